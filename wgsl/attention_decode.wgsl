// Decode attention split over keys (flash-decoding): a few query rows attend to long cached key
// ranges, so each row's range ranges[i] = [start, end) is cut into P equal parts (split s takes
// [start + s*n/P, start + (s+1)*n/P), n = end - start), each processed on its own with an online
// softmax into a partial record (acc unnormalised, m running max, l sum of exp(score - m)), and
// `combine` merges the P records of a (row, head). Query head h reads kv head h / (H / K); scores
// are scaled by `scale`. Same layouts as attention.wgsl: q, o (Tq, H, E); k, v (Tk, K, E).
//   partial        one invocation per (split, row, head), scalar loads (any head_dim).
//   partial4       the same with vec4 loads (head_dim a multiple of 4): the software adapter's.
//   partial_tiled  one workgroup per (split, row, tile of hpw query heads of one kv group): the
//                  heads' queries in shared memory, TW keys per step (one per invocation, all
//                  hpw scores from one read of the key row), the tile's max and sum per head by
//                  hpw invocations, then p.V with invocations over (head, e4) pairs so value rows
//                  are read coalesced; GPUs' variant (hpw * head_dim <= 1024, hpw <= 8).
//   combine        one invocation per (row, head, e): o = sum_s exp(m_s - M) acc_s / L and, at
//                  e = 0, stats.x = lse = M + log L (L = sum_s exp(m_s - M) l_s).
// A partial record is E + 4 floats: acc (E), m, l, 0, 0; records are (P, Tq, H). Rows with an
// empty range give o = 0 and lse = -inf, as attention.wgsl. Grids are folded: flat =
// (wid.y*nwg.x + wid.x)*WG + lid.x, or the workgroup index for partial_tiled.

struct Params {
  queryRows: u32, // Tq
  heads: u32,     // H
  kvHeads: u32,   // K
  headDim: u32,   // E
  splits: u32,    // P
  hpw: u32,       // partial_tiled: query heads per workgroup (divides H / K)
  scale: f32,
  pad0: u32,
}

override WG: u32 = 64u;
const TW: u32 = 64u; // partial_tiled: invocations = keys per step
const EMAX: u32 = 128u;
const HMAX: u32 = 8u;    // partial_tiled: heads per workgroup
const QMAX: u32 = 256u;  // partial_tiled: hpw * E / 4
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;             // (Tq, H, E)
@group(0) @binding(2) var<storage, read> k: array<f32>;             // (Tk, K, E)
@group(0) @binding(3) var<storage, read> v: array<f32>;             // (Tk, K, E)
@group(0) @binding(4) var<storage, read> ranges: array<vec2u>;      // (Tq): key ranges
@group(0) @binding(5) var<storage, read_write> part: array<f32>;    // (P, Tq, H, E + 4)
// partial4, partial_tiled: the same as vec4
@group(0) @binding(1) var<storage, read> q4: array<vec4f>;
@group(0) @binding(2) var<storage, read> k4: array<vec4f>;
@group(0) @binding(3) var<storage, read> v4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> part4: array<vec4f>;
// combine
@group(0) @binding(1) var<storage, read> partIn: array<f32>;        // (P, Tq, H, E + 4)
@group(0) @binding(2) var<storage, read_write> stats: array<vec2f>; // (Tq, H): (lse, 0)
@group(0) @binding(3) var<storage, read_write> o: array<f32>;       // (Tq, H, E)

fn flatId(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// The keys [a, b) of split s of query row i.
fn splitRange(i: u32, s: u32) -> vec2u {
  let r = ranges[i];
  let n = select(0u, r.y - r.x, r.y > r.x);
  let P = params.splits;
  return vec2u(r.x + (s * n) / P, r.x + ((s + 1u) * n) / P);
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // (s * Tq + i) * H + h
  let H = params.heads;
  let Tq = params.queryRows;
  if (flat >= params.splits * Tq * H) {
    return;
  }
  let E = params.headDim;
  let sq = flat / H; // s * Tq + i
  let h = flat - sq * H;
  let s = sq / Tq;
  let i = sq - s * Tq;
  let kh = h / (H / params.kvHeads);
  let ab = splitRange(i, s);
  let qo = (i * H + h) * E;
  var qv: array<f32, EMAX>;
  var acc: array<f32, EMAX>;
  for (var e = 0u; e < E; e++) {
    qv[e] = q[qo + e] * params.scale;
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = ab.x; j < ab.y; j++) {
    let ko = (j * params.kvHeads + kh) * E;
    var sc = 0.0;
    for (var e = 0u; e < E; e++) {
      sc += qv[e] * k[ko + e];
    }
    if (sc > m) {
      let c = exp(m - sc);
      l *= c;
      for (var e = 0u; e < E; e++) {
        acc[e] *= c;
      }
      m = sc;
    }
    let p = exp(sc - m);
    l += p;
    for (var e = 0u; e < E; e++) {
      acc[e] += p * v[ko + e];
    }
  }
  let po = flat * (E + 4u);
  for (var e = 0u; e < E; e++) {
    part[po + e] = acc[e];
  }
  part[po + E] = m;
  part[po + E + 1u] = l;
}

@compute @workgroup_size(WG)
fn partial4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // (s * Tq + i) * H + h
  let H = params.heads;
  let Tq = params.queryRows;
  if (flat >= params.splits * Tq * H) {
    return;
  }
  let E4 = params.headDim / 4u;
  let sq = flat / H;
  let h = flat - sq * H;
  let s = sq / Tq;
  let i = sq - s * Tq;
  let kh = h / (H / params.kvHeads);
  let ab = splitRange(i, s);
  let qo = (i * H + h) * E4;
  var qv: array<vec4f, EMAX / 4u>;
  var acc: array<vec4f, EMAX / 4u>;
  for (var e = 0u; e < E4; e++) {
    qv[e] = q4[qo + e] * params.scale;
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = ab.x; j < ab.y; j++) {
    let ko = (j * params.kvHeads + kh) * E4;
    var s4 = vec4f(0.0);
    for (var e = 0u; e < E4; e++) {
      s4 += qv[e] * k4[ko + e];
    }
    let sc = s4.x + s4.y + s4.z + s4.w;
    if (sc > m) {
      let c = exp(m - sc);
      l *= c;
      for (var e = 0u; e < E4; e++) {
        acc[e] *= c;
      }
      m = sc;
    }
    let p = exp(sc - m);
    l += p;
    for (var e = 0u; e < E4; e++) {
      acc[e] += p * v4[ko + e];
    }
  }
  let po = flat * (E4 + 1u);
  for (var e = 0u; e < E4; e++) {
    part4[po + e] = acc[e];
  }
  part4[po + E4] = vec4f(m, l, 0.0, 0.0);
}

var<workgroup> qs: array<vec4f, QMAX>;      // (hpw, E/4) scaled queries of the tile's heads
var<workgroup> sc: array<f32, HMAX * TW>;   // (hpw, TW) scores, then weights
var<workgroup> hm: array<f32, HMAX>;        // running max per head
var<workgroup> hl: array<f32, HMAX>;        // running sum per head
var<workgroup> hc: array<f32, HMAX>;        // this step's rescale factor per head

@compute @workgroup_size(TW)
fn partial_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  let unit = wid.y * nwg.x + wid.x; // (s * Tq + i) * tiles + tile
  let H = params.heads;
  let Tq = params.queryRows;
  let hpw = params.hpw;
  let tiles = H / hpw;
  if (unit >= params.splits * Tq * tiles) {
    return;
  }
  let t = lid.x;
  let E4 = params.headDim / 4u;
  let K = params.kvHeads;
  let sq = unit / tiles;
  let h0 = (unit - sq * tiles) * hpw;
  let s = sq / Tq;
  let i = sq - s * Tq;
  let kh = h0 / (H / K);
  let pairs = hpw * E4;
  for (var idx = t; idx < pairs; idx += TW) {
    qs[idx] = q4[(i * H + h0) * E4 + idx] * params.scale;
  }
  if (t < hpw) {
    hm[t] = NEG_BIG;
    hl[t] = 0.0;
  }
  let ab = splitRange(i, s);
  var acc: array<vec4f, 4>; // pairs t, t + TW, ... (QMAX / TW of them at most)
  var sv: array<vec4f, HMAX>; // declared out of the loop: zeroed explicitly each step
  workgroupBarrier();
  for (var j0 = ab.x; j0 < ab.y; j0 += TW) {
    let cnt = min(TW, ab.y - j0);
    // 1. scores of key j0 + t for the tile's heads, from one read of the key row
    for (var g = 0u; g < hpw; g++) {
      sv[g] = vec4f(0.0);
    }
    if (t < cnt) {
      let ko = ((j0 + t) * K + kh) * E4;
      for (var e = 0u; e < E4; e++) {
        let kv = k4[ko + e];
        for (var g = 0u; g < hpw; g++) {
          sv[g] += qs[g * E4 + e] * kv;
        }
      }
    }
    for (var g = 0u; g < hpw; g++) {
      sc[g * TW + t] = dot(sv[g], vec4f(1.0));
    }
    workgroupBarrier();
    // 2. per head: the step's max, the rescale of what came before, weights and their sum
    if (t < hpw) {
      let m0 = hm[t];
      var mx = m0;
      for (var jj = 0u; jj < cnt; jj++) {
        mx = max(mx, sc[t * TW + jj]);
      }
      var sum = 0.0;
      for (var jj = 0u; jj < cnt; jj++) {
        let p = exp(sc[t * TW + jj] - mx);
        sc[t * TW + jj] = p;
        sum += p;
      }
      let c = exp(m0 - mx);
      hc[t] = c;
      hl[t] = hl[t] * c + sum;
      hm[t] = mx;
    }
    workgroupBarrier();
    // 3. acc = acc * c + p . V over (head, e4) pairs: consecutive invocations, consecutive e4
    for (var r = 0u; r < 4u; r++) {
      let pair = t + r * TW;
      if (pair < pairs) {
        let g = pair / E4;
        let e = pair - g * E4;
        var a = acc[r] * hc[g];
        for (var jj = 0u; jj < cnt; jj++) {
          a += sc[g * TW + jj] * v4[((j0 + jj) * K + kh) * E4 + e];
        }
        acc[r] = a;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r++) {
    let pair = t + r * TW;
    if (pair < pairs) {
      let g = pair / E4;
      let e = pair - g * E4;
      part4[((s * Tq + i) * H + h0 + g) * (E4 + 1u) + e] = acc[r];
    }
  }
  if (t < hpw) {
    part4[((s * Tq + i) * H + h0 + t) * (E4 + 1u) + E4] = vec4f(hm[t], hl[t], 0.0, 0.0);
  }
}

@compute @workgroup_size(WG)
fn combine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // (i * H + h) * E + e
  let E = params.headDim;
  let TH = params.queryRows * params.heads;
  if (flat >= TH * E) {
    return;
  }
  let ih = flat / E;
  let e = flat - ih * E;
  let R = E + 4u;
  var M = NEG_BIG;
  for (var s = 0u; s < params.splits; s++) {
    M = max(M, partIn[(s * TH + ih) * R + E]);
  }
  var L = 0.0;
  var acc = 0.0;
  for (var s = 0u; s < params.splits; s++) {
    let ro = (s * TH + ih) * R;
    let c = exp(partIn[ro + E] - M);
    L += c * partIn[ro + E + 1u];
    acc += c * partIn[ro + e];
  }
  o[flat] = select(0.0, acc / L, L > 0.0);
  if (e == 0u) {
    stats[ih] = vec2f(select(bitcast<f32>(0xff800000u), M + log(L), L > 0.0), 0.0);
  }
}
