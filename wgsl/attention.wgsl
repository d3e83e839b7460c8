// Causal grouped-query attention, flash-attention style: no (T x T) score matrix is stored.
// Query row i sees the key rows ranges[i] = [start, end) (per-sequence causal masks of a packed
// batch, and KV-cache decoding, are both just ranges); key row j is seen by the query rows in
// ranges[Tq + j]. Query head h reads kv head h / (H / K). Scores are scaled by `scale`.
// Each kernel runs in passes p = 0, 1, ...: pass p takes the next `span` keys (query rows for
// backward_dkv) of every range, [start + p*span, start + (p+1)*span), and carries its running
// state over to the next in the outputs, so no invocation loops past Mesa's software adapter's
// limit (it silently ends an invocation's loops after 65535 iterations in all); a row whose
// range ended in an earlier pass returns at once. Pass 0 always runs every row.
//   forward       one invocation per (query row, head): an online softmax over the pass's keys
//                 (running max m, sum l; the accumulator rescaled by exp(m_old - m_new) at every
//                 key); between passes o holds the unnormalised accumulator and stats (m, l);
//                 the row's last pass writes o and stats.x = lse = m + log(l) for the backward.
//   backward_dq   one invocation per (query row, head): delta = sum(dO * o) -> stats.y (pass 0),
//                 dQ = scale * sum_j p_j (dO.v_j - delta) k_j with p_j = exp(s_j - lse) (= in pass
//                 0, += after).
//   backward_dkv  one invocation per (key row, kv head): over the pass's query rows that see it
//                 and the heads of its group, dV = sum p dO and dK = scale * sum p (dO.v - delta) q
//                 (= in pass 0, += after). No atomics; runs after backward_dq (it reads delta).
// *_tex variants (chosen on the software adapter when the row layout allows a buffer-to-texture
// copy): the operands streamed in the inner loop come from rgba32f textures, with vec4 math.
// Head vectors live in private arrays of EMAX floats (head_dim <= EMAX). Grids are folded:
// flat = (wid.y*nwg.x + wid.x)*WG + lid.x. Rows with an empty range give o = 0, lse = -inf.

struct Params {
  queryRows: u32, // Tq
  keyRows: u32,   // Tk
  heads: u32,     // H
  kvHeads: u32,   // K
  headDim: u32,   // E
  scale: f32,
  passIndex: u32, // p
  span: u32,      // keys (forward, backward_dq) or query rows (backward_dkv) per range and pass
}

override WG: u32 = 64u;
const EMAX: u32 = 128u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;             // (Tq, H, E)
@group(0) @binding(2) var<storage, read> k: array<f32>;             // (Tk, K, E)
@group(0) @binding(3) var<storage, read> v: array<f32>;             // (Tk, K, E)
@group(0) @binding(4) var<storage, read> ranges: array<vec2u>;      // (Tq + Tk): keys, queries
@group(0) @binding(5) var<storage, read_write> stats: array<vec2f>; // (Tq, H): (lse, delta); (m, l) between forward passes
@group(0) @binding(6) var<storage, read_write> o: array<f32>;       // (Tq, H, E) forward
// forward_tex: q and o as vec4, k and v as rgba32f textures (Tk, K*E/4): on the software adapter
// a texel fetch costs a fifth of a storage load (head_dim a multiple of 4)
@group(0) @binding(1) var<storage, read> q4: array<vec4f>;
@group(0) @binding(2) var kTex: texture_2d<f32>;
@group(0) @binding(3) var vTex: texture_2d<f32>;
@group(0) @binding(6) var<storage, read_write> o4: array<vec4f>;
// backward_dq
@group(0) @binding(6) var<storage, read> dOut: array<f32>;          // (Tq, H, E)
@group(0) @binding(7) var<storage, read> oSaved: array<f32>;        // (Tq, H, E)
@group(0) @binding(8) var<storage, read_write> dQ: array<f32>;      // (Tq, H, E)
// backward_dq_tex: q, dOut, oSaved, dQ as vec4, k and v as textures (bindings 2, 3 as above)
@group(0) @binding(6) var<storage, read> dOut4: array<vec4f>;
@group(0) @binding(7) var<storage, read> oSaved4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dQ4: array<vec4f>;
// backward_dkv_tex: q and dOut as rgba32f textures (Tq, H*E/4), k, v, dK, dV as vec4
@group(0) @binding(1) var qTex: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> k4: array<vec4f>;
@group(0) @binding(3) var<storage, read> v4: array<vec4f>;
@group(0) @binding(6) var dOutTex: texture_2d<f32>;
@group(0) @binding(7) var<storage, read_write> dK4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dV4: array<vec4f>;
// backward_dkv (binding 6 is dOut as above)
@group(0) @binding(7) var<storage, read_write> dK: array<f32>;      // (Tk, K, E)
@group(0) @binding(8) var<storage, read_write> dV: array<f32>;      // (Tk, K, E)

fn flatId(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// The part of range r this pass takes: [r.x + p*span, min(r.y, r.x + (p+1)*span)).
fn passPart(r: vec2u) -> vec2u {
  let a = r.x + params.passIndex * params.span;
  return vec2u(a, min(r.y, a + params.span));
}

// Whether this pass has nothing left to do for range r (never so in pass 0).
fn passDone(r: vec2u) -> bool {
  return params.passIndex > 0u && r.x + params.passIndex * params.span >= r.y;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // i * H + h
  let H = params.heads;
  if (flat >= params.queryRows * H) {
    return;
  }
  let E = params.headDim;
  let i = flat / H;
  let kh = (flat - i * H) / (H / params.kvHeads);
  let r = ranges[i];
  if (passDone(r)) {
    return;
  }
  let part = passPart(r);
  let qo = flat * E;
  var qv: array<f32, EMAX>;
  var acc: array<f32, EMAX>;
  var m = NEG_BIG;
  var l = 0.0;
  if (params.passIndex > 0u) {
    m = stats[flat].x;
    l = stats[flat].y;
    for (var e = 0u; e < E; e++) {
      acc[e] = o[qo + e];
    }
  }
  for (var e = 0u; e < E; e++) {
    qv[e] = q[qo + e] * params.scale;
  }
  for (var j = part.x; j < part.y; j++) {
    let ko = (j * params.kvHeads + kh) * E;
    var s = 0.0;
    for (var e = 0u; e < E; e++) {
      s += qv[e] * k[ko + e];
    }
    let mNew = max(m, s);
    let c = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * c + p;
    m = mNew;
    for (var e = 0u; e < E; e++) {
      acc[e] = acc[e] * c + p * v[ko + e];
    }
  }
  if (part.y < r.y) { // more keys in the next pass
    for (var e = 0u; e < E; e++) {
      o[qo + e] = acc[e];
    }
    stats[flat] = vec2f(m, l);
    return;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var e = 0u; e < E; e++) {
    o[qo + e] = acc[e] * inv;
  }
  stats[flat] = vec2f(select(bitcast<f32>(0xff800000u), m + log(l), l > 0.0), 0.0);
}

@compute @workgroup_size(WG)
fn forward_tex(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // i * H + h
  let H = params.heads;
  if (flat >= params.queryRows * H) {
    return;
  }
  let E4 = params.headDim / 4u;
  let i = flat / H;
  let kh = (flat - i * H) / (H / params.kvHeads);
  let r = ranges[i];
  if (passDone(r)) {
    return;
  }
  let part = passPart(r);
  let qo = flat * E4;
  let x0 = kh * E4; // first texel of this kv head in a key row
  var qv: array<vec4f, EMAX / 4u>;
  var acc: array<vec4f, EMAX / 4u>;
  var m = NEG_BIG;
  var l = 0.0;
  if (params.passIndex > 0u) {
    m = stats[flat].x;
    l = stats[flat].y;
    for (var e = 0u; e < E4; e++) {
      acc[e] = o4[qo + e];
    }
  }
  for (var e = 0u; e < E4; e++) {
    qv[e] = q4[qo + e] * params.scale;
  }
  for (var j = part.x; j < part.y; j++) {
    var s4 = vec4f(0.0);
    for (var e = 0u; e < E4; e++) {
      s4 += qv[e] * textureLoad(kTex, vec2u(x0 + e, j), 0);
    }
    let s = s4.x + s4.y + s4.z + s4.w;
    let mNew = max(m, s);
    let c = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * c + p;
    m = mNew;
    for (var e = 0u; e < E4; e++) {
      acc[e] = acc[e] * c + p * textureLoad(vTex, vec2u(x0 + e, j), 0);
    }
  }
  if (part.y < r.y) { // more keys in the next pass
    for (var e = 0u; e < E4; e++) {
      o4[qo + e] = acc[e];
    }
    stats[flat] = vec2f(m, l);
    return;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var e = 0u; e < E4; e++) {
    o4[qo + e] = acc[e] * inv;
  }
  stats[flat] = vec2f(select(bitcast<f32>(0xff800000u), m + log(l), l > 0.0), 0.0);
}

@compute @workgroup_size(WG)
fn backward_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // i * H + h
  let H = params.heads;
  if (flat >= params.queryRows * H) {
    return;
  }
  let E = params.headDim;
  let i = flat / H;
  let kh = (flat - i * H) / (H / params.kvHeads);
  let r = ranges[i];
  if (passDone(r)) {
    return;
  }
  let part = passPart(r);
  let qo = flat * E;
  var qv: array<f32, EMAX>;
  var dov: array<f32, EMAX>;
  var acc: array<f32, EMAX>;
  var delta = 0.0;
  for (var e = 0u; e < E; e++) {
    qv[e] = q[qo + e] * params.scale;
    dov[e] = dOut[qo + e];
    delta += dov[e] * oSaved[qo + e];
  }
  let lse = stats[flat].x;
  for (var j = part.x; j < part.y; j++) {
    let ko = (j * params.kvHeads + kh) * E;
    var s = 0.0;
    var dp = 0.0;
    for (var e = 0u; e < E; e++) {
      s += qv[e] * k[ko + e];
      dp += dov[e] * v[ko + e];
    }
    let ds = exp(s - lse) * (dp - delta);
    for (var e = 0u; e < E; e++) {
      acc[e] += ds * k[ko + e];
    }
  }
  if (params.passIndex == 0u) {
    for (var e = 0u; e < E; e++) {
      dQ[qo + e] = acc[e] * params.scale;
    }
    stats[flat].y = delta;
  } else {
    for (var e = 0u; e < E; e++) {
      dQ[qo + e] += acc[e] * params.scale;
    }
  }
}

@compute @workgroup_size(WG)
fn backward_dq_tex(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // i * H + h
  let H = params.heads;
  if (flat >= params.queryRows * H) {
    return;
  }
  let E4 = params.headDim / 4u;
  let i = flat / H;
  let kh = (flat - i * H) / (H / params.kvHeads);
  let r = ranges[i];
  if (passDone(r)) {
    return;
  }
  let part = passPart(r);
  let qo = flat * E4;
  let x0 = kh * E4;
  var qv: array<vec4f, EMAX / 4u>;
  var dov: array<vec4f, EMAX / 4u>;
  var acc: array<vec4f, EMAX / 4u>;
  var delta4 = vec4f(0.0);
  for (var e = 0u; e < E4; e++) {
    qv[e] = q4[qo + e] * params.scale;
    dov[e] = dOut4[qo + e];
    delta4 += dov[e] * oSaved4[qo + e];
  }
  let delta = delta4.x + delta4.y + delta4.z + delta4.w;
  let lse = stats[flat].x;
  for (var j = part.x; j < part.y; j++) {
    var s4 = vec4f(0.0);
    var dp4 = vec4f(0.0);
    for (var e = 0u; e < E4; e++) {
      s4 += qv[e] * textureLoad(kTex, vec2u(x0 + e, j), 0);
      dp4 += dov[e] * textureLoad(vTex, vec2u(x0 + e, j), 0);
    }
    let s = s4.x + s4.y + s4.z + s4.w;
    let dp = dp4.x + dp4.y + dp4.z + dp4.w;
    let ds = exp(s - lse) * (dp - delta);
    for (var e = 0u; e < E4; e++) {
      acc[e] += ds * textureLoad(kTex, vec2u(x0 + e, j), 0);
    }
  }
  if (params.passIndex == 0u) {
    for (var e = 0u; e < E4; e++) {
      dQ4[qo + e] = acc[e] * params.scale;
    }
    stats[flat].y = delta;
  } else {
    for (var e = 0u; e < E4; e++) {
      dQ4[qo + e] += acc[e] * params.scale;
    }
  }
}

@compute @workgroup_size(WG)
fn backward_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // j * K + kh
  let K = params.kvHeads;
  if (flat >= params.keyRows * K) {
    return;
  }
  let E = params.headDim;
  let H = params.heads;
  let group = H / K;
  let j = flat / K;
  let kh = flat - j * K;
  let rq = ranges[params.queryRows + j];
  if (passDone(rq)) {
    return;
  }
  let part = passPart(rq);
  let ko = flat * E;
  var dk: array<f32, EMAX>;
  var dv: array<f32, EMAX>;
  for (var i = part.x; i < part.y; i++) {
    let r = ranges[i];
    if (j < r.x || j >= r.y) {
      continue;
    }
    for (var h = kh * group; h < (kh + 1u) * group; h++) {
      let qo = (i * H + h) * E;
      let st = stats[i * H + h];
      var s = 0.0;
      var dp = 0.0;
      for (var e = 0u; e < E; e++) {
        s += q[qo + e] * k[ko + e];
        dp += dOut[qo + e] * v[ko + e];
      }
      let p = exp(s * params.scale - st.x);
      let ds = p * (dp - st.y);
      for (var e = 0u; e < E; e++) {
        dv[e] += p * dOut[qo + e];
        dk[e] += ds * q[qo + e];
      }
    }
  }
  if (params.passIndex == 0u) {
    for (var e = 0u; e < E; e++) {
      dK[ko + e] = dk[e] * params.scale;
      dV[ko + e] = dv[e];
    }
  } else {
    for (var e = 0u; e < E; e++) {
      dK[ko + e] += dk[e] * params.scale;
      dV[ko + e] += dv[e];
    }
  }
}

@compute @workgroup_size(WG)
fn backward_dkv_tex(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_id) lid: vec3u) {
  let flat = flatId(wid, nwg, lid); // j * K + kh
  let K = params.kvHeads;
  if (flat >= params.keyRows * K) {
    return;
  }
  let E4 = params.headDim / 4u;
  let H = params.heads;
  let group = H / K;
  let j = flat / K;
  let kh = flat - j * K;
  let rq = ranges[params.queryRows + j];
  if (passDone(rq)) {
    return;
  }
  let part = passPart(rq);
  let ko = flat * E4;
  var kv: array<vec4f, EMAX / 4u>;
  var vv: array<vec4f, EMAX / 4u>;
  var dk: array<vec4f, EMAX / 4u>;
  var dv: array<vec4f, EMAX / 4u>;
  for (var e = 0u; e < E4; e++) {
    kv[e] = k4[ko + e] * params.scale;
    vv[e] = v4[ko + e];
  }
  for (var i = part.x; i < part.y; i++) {
    let r = ranges[i];
    if (j < r.x || j >= r.y) {
      continue;
    }
    for (var h = kh * group; h < (kh + 1u) * group; h++) {
      let x0 = h * E4;
      let st = stats[i * H + h];
      var s4 = vec4f(0.0);
      var dp4 = vec4f(0.0);
      for (var e = 0u; e < E4; e++) {
        s4 += kv[e] * textureLoad(qTex, vec2u(x0 + e, i), 0);
        dp4 += vv[e] * textureLoad(dOutTex, vec2u(x0 + e, i), 0);
      }
      let p = exp(s4.x + s4.y + s4.z + s4.w - st.x);
      let ds = p * (dp4.x + dp4.y + dp4.z + dp4.w - st.y);
      for (var e = 0u; e < E4; e++) {
        dv[e] += p * textureLoad(dOutTex, vec2u(x0 + e, i), 0);
        dk[e] += ds * textureLoad(qTex, vec2u(x0 + e, i), 0);
      }
    }
  }
  if (params.passIndex == 0u) {
    for (var e = 0u; e < E4; e++) {
      dK4[ko + e] = dk[e] * params.scale;
      dV4[ko + e] = dv[e];
    }
  } else {
    for (var e = 0u; e < E4; e++) {
      dK4[ko + e] += dk[e] * params.scale;
      dV4[ko + e] += dv[e];
    }
  }
}
