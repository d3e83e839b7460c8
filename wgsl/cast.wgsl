// Casts between f32, f16 and bf16; f16/bf16 are packed two per u32 (element 2i in the low
// half), f32 is read and written as raw words so no value passes through float arithmetic.
// Rounding f32 -> f16/bf16 is to nearest even (ties to even), overflow gives inf, NaN stays NaN,
// f16 subnormals are produced and read exactly. No shader-f16 needed.
// One invocation per packed word (two elements), grid folded:
// word = (wid.y*nwg.x + wid.x)*WG + lid.x; n counts elements.

struct Params {
  n: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn f32ToF16(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let ex = (b >> 23u) & 0xffu;
  var mant = b & 0x7fffffu;
  if (ex == 0xffu) {
    return sign | 0x7c00u | select(0u, 0x200u, mant != 0u);
  }
  let e = i32(ex) - 112; // rebias 127 -> 15
  if (e >= 31) {
    return sign | 0x7c00u;
  }
  if (e <= 0) {
    if (e < -10) {
      return sign;
    }
    mant |= 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rest = mant & ((1u << shift) - 1u);
    var m = mant >> shift;
    if (rest > half || (rest == half && (m & 1u) == 1u)) {
      m += 1u;
    }
    return sign | m;
  }
  var h = sign | (u32(e) << 10u) | (mant >> 13u);
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) {
    h += 1u; // a carry rolls into the exponent, up to inf
  }
  return h;
}

fn f16ToF32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let ex = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (ex == 0u) {
    // zero or subnormal: mant * 2^-24 is exact in f32
    return sign | bitcast<u32>(f32(mant) * 5.9604644775390625e-8);
  }
  if (ex == 31u) {
    return sign | 0x7f800000u | (mant << 13u);
  }
  return sign | ((ex + 112u) << 23u) | (mant << 13u);
}

fn f32ToBf16(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) {
    return ((b >> 16u) | 0x40u) & 0xffffu;
  }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}

fn bf16ToF32(h: u32) -> u32 {
  return h << 16u;
}

fn wordId(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// f32 (n) -> packed 16-bit (ceil(n/2)); to16 selects the format (0 f16, 1 bf16).
fn narrow(w: u32, to16: u32) {
  if (2u * w >= params.n) {
    return;
  }
  var out = 0u;
  for (var j = 0u; j < 2u; j++) {
    if (2u * w + j < params.n) {
      let b = src[2u * w + j];
      out |= select(f32ToF16(b), f32ToBf16(b), to16 == 1u) << (16u * j);
    }
  }
  dst[w] = out;
}

// packed 16-bit (ceil(n/2)) -> f32 (n)
fn widen(w: u32, from16: u32) {
  if (2u * w >= params.n) {
    return;
  }
  let word = src[w];
  for (var j = 0u; j < 2u; j++) {
    if (2u * w + j < params.n) {
      let h = (word >> (16u * j)) & 0xffffu;
      dst[2u * w + j] = select(f16ToF32(h), bf16ToF32(h), from16 == 1u);
    }
  }
}

@compute @workgroup_size(WG)
fn f32_to_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u) {
  narrow(wordId(wid, nwg, lid), 0u);
}

@compute @workgroup_size(WG)
fn f32_to_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  narrow(wordId(wid, nwg, lid), 1u);
}

@compute @workgroup_size(WG)
fn f16_to_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u) {
  widen(wordId(wid, nwg, lid), 0u);
}

@compute @workgroup_size(WG)
fn bf16_to_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  widen(wordId(wid, nwg, lid), 1u);
}

// Between the 16-bit formats through the exact f32 value (one rounding, to nearest even).
@compute @workgroup_size(WG)
fn f16_to_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let w = wordId(wid, nwg, lid);
  if (2u * w >= params.n) {
    return;
  }
  let word = src[w];
  dst[w] = f32ToBf16(f16ToF32(word & 0xffffu)) | (f32ToBf16(f16ToF32(word >> 16u)) << 16u);
}

@compute @workgroup_size(WG)
fn bf16_to_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let w = wordId(wid, nwg, lid);
  if (2u * w >= params.n) {
    return;
  }
  let word = src[w];
  dst[w] = f32ToF16(bf16ToF32(word & 0xffffu)) | (f32ToF16(bf16ToF32(word >> 16u)) << 16u);
}
