// Matmul for a Linear layer whose weight is stored [out, in] (PyTorch): the generic product
//   C[i, j] (+)= sum_c A(i, c) * B(j, c)          C: (I, J) row-major f32
// read in three layouts, one entry point each (M tokens, K in_features, N out_features):
//   forward         Y  = X . W^T   i=m j=n c=k   A = X  (M, K)      B = W (N, K)
//   backwardInput   dX = dY . W    i=m j=k c=n   A = dY (M, N)      B = W (N, K) read as (C, J)
//   backwardWeight  dW += dY^T . X i=n j=k c=m   A = dY (M, N) as (C, I)   B = X (M, K) as (C, J)
// B is bound as raw u32 words and decoded per B_DTYPE (0 f32, 1 f16, 2 bf16: two per word),
// so frozen f16/bf16 weights need no cast pass; A and C are f32, accumulation is f32.
// Parallelisation (the variant for real GPUs): one 64x64 tile of C per workgroup of 16x16
// invocations, each owning a 4x4 register block; A and B slabs of depth 16 staged in shared
// memory. Edges are bounds-checked, so no dimension needs to be a multiple of the tile.
// Also here: `pack`, which copies a strided matrix into an rgba32float texture for the
// texture variant (wgsl/matmul_tex.wgsl), zero-filling the padding.

struct Params {
  I: u32,          // rows of C
  J: u32,          // columns of C
  C: u32,          // contraction length
  accumulate: u32, // 1: C += A.B, 0: C = A.B
  ldc: u32,        // row stride of C (elements)
  cOff: u32,       // element offset of C's first element
  aOff: u32,       // element offset of A's first element
  bOff: u32,       // element offset of B's first element
  lda: u32,        // row stride of A as stored (elements)
  ldb: u32,        // row stride of B as stored (elements)
}

override B_DTYPE: u32 = 0u;

@group(0) @binding(0) var<storage, read_write> c: array<f32>;  // (I, J) at cOff, stride ldc
@group(0) @binding(1) var<storage, read> a: array<f32>;        // (I, C) or (C, I)
@group(0) @binding(2) var<storage, read> b: array<u32>;        // (J, C) or (C, J), B_DTYPE
@group(0) @binding(3) var<uniform> p: Params;

const TILE: u32 = 64u;
const DEPTH: u32 = 16u;
var<workgroup> sa: array<f32, 1024>; // [DEPTH][TILE]: sa[c * TILE + i]
var<workgroup> sb: array<f32, 1024>; // [DEPTH][TILE]: sb[c * TILE + j]

fn loadB(e: u32) -> f32 {
  if (B_DTYPE == 0u) {
    return bitcast<f32>(b[e]);
  }
  let word = b[e >> 1u];
  if (B_DTYPE == 1u) {
    return unpack2x16float(word)[e & 1u];
  }
  let bits = select(word << 16u, word & 0xffff0000u, (e & 1u) == 1u);
  return bitcast<f32>(bits);
}

// aT: A stored (C, I); bT: B stored (C, J). Otherwise (I, C) and (J, C).
fn tile(wid: vec3u, lid: vec3u, aT: bool, bT: bool) {
  let i0 = wid.y * TILE;
  let j0 = wid.x * TILE;
  let t = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var c0 = 0u; c0 < p.C; c0 += DEPTH) {
    // 1024 elements of each slab, 4 per invocation
    for (var q = 0u; q < 4u; q++) {
      let e = t + q * 256u;
      var row: u32; // position along I (or J)
      var col: u32; // position along the depth
      if (aT) { row = e % TILE; col = e / TILE; } else { row = e / DEPTH; col = e % DEPTH; }
      let i = i0 + row;
      let k = c0 + col;
      var va = 0.0;
      if (i < p.I && k < p.C) {
        va = a[p.aOff + select(i * p.lda + k, k * p.lda + i, aT)];
      }
      sa[col * TILE + row] = va;
      if (bT) { row = e % TILE; col = e / TILE; } else { row = e / DEPTH; col = e % DEPTH; }
      let j = j0 + row;
      let kb = c0 + col;
      var vb = 0.0;
      if (j < p.J && kb < p.C) {
        vb = loadB(p.bOff + select(j * p.ldb + kb, kb * p.ldb + j, bT));
      }
      sb[col * TILE + row] = vb;
    }
    workgroupBarrier();
    for (var k = 0u; k < DEPTH; k++) {
      var ra: array<f32, 4>;
      var rb: array<f32, 4>;
      for (var r = 0u; r < 4u; r++) {
        ra[r] = sa[k * TILE + lid.y * 4u + r];
        rb[r] = sb[k * TILE + lid.x * 4u + r];
      }
      for (var r = 0u; r < 4u; r++) {
        for (var s = 0u; s < 4u; s++) {
          acc[r][s] = fma(ra[r], rb[s], acc[r][s]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r++) {
    let i = i0 + lid.y * 4u + r;
    for (var s = 0u; s < 4u; s++) {
      let j = j0 + lid.x * 4u + s;
      if (i < p.I && j < p.J) {
        let o = p.cOff + i * p.ldc + j;
        c[o] = select(0.0, c[o], p.accumulate == 1u) + acc[r][s];
      }
    }
  }
}

@compute @workgroup_size(16, 16)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  tile(wid, lid, false, false);
}

@compute @workgroup_size(16, 16)
fn backwardInput(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  tile(wid, lid, false, true);
}

@compute @workgroup_size(16, 16)
fn backwardWeight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  tile(wid, lid, true, true);
}

// ---- pack: strided matrix -> rgba32float texture ------------------------------------------
// texel (x, y) component q = src[off + y * sy + (4x + q) * sx] when 4x + q < X and y < Y, else 0.
// The texture may be larger than (ceil(X / 4), Y): the rest is zero padding.
struct PackParams {
  X: u32,   // extent along the texel components
  Y: u32,   // extent along texture rows
  sx: u32,
  sy: u32,
  off: u32,
  width: u32, // texture width in texels
  height: u32,
}

override SRC_DTYPE: u32 = 0u;

@group(0) @binding(0) var dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<uniform> pp: PackParams;

fn loadSrc(e: u32) -> f32 {
  if (SRC_DTYPE == 0u) {
    return bitcast<f32>(src[e]);
  }
  let word = src[e >> 1u];
  if (SRC_DTYPE == 1u) {
    return unpack2x16float(word)[e & 1u];
  }
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1u) == 1u));
}

@compute @workgroup_size(64)
fn pack(@builtin(global_invocation_id) gid: vec3u) {
  let x = gid.x;
  let y = gid.y;
  if (x >= pp.width || y >= pp.height) { return; }
  var v = vec4f(0.0);
  if (y < pp.Y) {
    for (var q = 0u; q < 4u; q++) {
      let k = 4u * x + q;
      if (k < pp.X) { v[q] = loadSrc(pp.off + y * pp.sy + k * pp.sx); }
    }
  }
  textureStore(dst, vec2u(x, y), v);
}

// ---- bias: the optional bias of a Linear layer (Qwen2's q/k/v projections) -----------------
//   bias_add       y[i, j] += bias[j]; one invocation per element, flat id folded over x and y
//   bias_backward  dBias[j] += sum_i dy[i, j]; one invocation per column, looping over rows
struct BiasParams {
  I: u32, // rows
  J: u32, // columns (out_features)
}

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> bOut: array<f32>; // y (I, J) | dBias (J)
@group(0) @binding(1) var<storage, read> bIn: array<f32>;        // bias (J) | dy (I, J)
@group(0) @binding(2) var<uniform> bp: BiasParams;

@compute @workgroup_size(WG)
fn bias_add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e >= bp.I * bp.J) { return; }
  bOut[e] += bIn[e % bp.J];
}

@compute @workgroup_size(WG)
fn bias_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (j >= bp.J) { return; }
  var s = 0.0;
  for (var i = 0u; i < bp.I; i++) { s += bIn[i * bp.J + j]; }
  bOut[j] += s;
}
