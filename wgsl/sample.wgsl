// Choosing one token per row from logits produced chunk by chunk over the vocabulary (x is one
// chunk: rows x cols, row stride ld, vocabulary ids colStart..colStart+cols), without the
// (rows, V) matrix ever existing at once. The running state of a row is two vec4u (floats as
// their bits, so that no float path can touch the id):
//   state[2 row]     = (m, s, sT, best)  max logit, sum exp(x - m), sum exp((x - m) / T), score
//   state[2 row + 1] = (bestX, bestId, 0, 0)  the logit and the id of the best score
// where the score is x (greedy, mode 0) or x / T + g(id) (temperature, mode 1: Gumbel-max with
// g = -log(-log(u)) and u from a counter-based hash of (seed, stream, step, id), so the choice
// depends on neither the batching nor the chunking). Mode 2 (top-k / top-p) keeps only the
// log-sum-exp here; its candidates come from topk.wgsl and are drawn from by finish_candidates.
//   chunk      one workgroup per (row, span of SPAN = WG * PER columns): invocations stride the
//              span (coalesced) with their own state, then a tree merge; writes one partial.
//   merge      one invocation per row: merges the chunk's partials into the state in column
//              order (first = 1 starts afresh).
//   finish     one invocation per row, modes 0 and 1: out = (id, logprob, 1).
//   finish_candidates  one invocation per row, mode 2: among the k candidates (value desc, id
//              asc; 0xffffffff pads when the vocabulary is smaller) keep the first topK, then the
//              smallest prefix holding mass topP (ties with the last kept value kept too), and
//              take the Gumbel-max over what is kept. out.z = 0 when, without top-k, the
//              candidates held less than the nucleus (the caller falls back; the token is then
//              drawn from all k candidates).
// logprob = bestX - (m + log s): the log-softmax at temperature 1. Scores tie to the lower id.
// Logits must be finite. Rows: row = wid.z * nwg.y + wid.y (chunk), flat ids elsewhere.

struct Params {
  rows: u32,
  cols: u32,
  ld: u32,        // row stride of the chunk (elements)
  colStart: u32,  // vocabulary id of the chunk's first column
  mode: u32,      // 0 greedy, 1 temperature (Gumbel-max), 2 candidates
  tempered: u32,  // 1: also accumulate sT (top-p without top-k needs the tempered total)
  parts: u32,     // partials per row of this chunk: ceil(cols / SPAN)
  first: u32,     // 1 for the first chunk of a row's pass
  invT: f32,      // 1 / temperature (0 for greedy)
  seed: u32,
  topK: u32,      // 0 = off
  topP: f32,      // 1 = off
  k: u32,         // candidates per row (row stride of vals / ids)
  vocab: u32,     // V
  pad0: u32,
  pad1: u32,
}

override WG: u32 = 128u;
override PER: u32 = 8u; // columns per invocation and chunk span
const NEG_BIG: f32 = -3.0e38;
const NONE: u32 = 0xffffffffu;
// The largest Gumbel value: u = 1 - 2^-25 gives -log(-log(u)) = 17.33.
const GUMBEL_MAX: f32 = 17.5;

@group(0) @binding(0) var<uniform> params: Params;
// chunk
@group(0) @binding(1) var<storage, read> x: array<f32>;            // (B, ld) chunk of logits
@group(0) @binding(2) var<storage, read> rowInfo: array<vec2u>;    // (B): (stream, step)
@group(0) @binding(3) var<storage, read_write> part: array<vec4u>; // (B, parts, 2) partials
// merge
@group(0) @binding(1) var<storage, read> partIn: array<vec4u>;     // (B, parts, 2)
@group(0) @binding(2) var<storage, read_write> state: array<vec4u>; // (B, 2)
// finish, finish_candidates
@group(0) @binding(1) var<storage, read> stateIn: array<vec4u>;    // (B, 2)
@group(0) @binding(2) var<storage, read_write> out: array<u32>;    // (B, 3): id, logprob, exact
@group(0) @binding(3) var<storage, read> rowInfoC: array<vec2u>;   // (B): (stream, step)
@group(0) @binding(4) var<storage, read> vals: array<f32>;         // (B, k) candidate logits
@group(0) @binding(5) var<storage, read> ids: array<u32>;          // (B, k) candidate ids

// ---- the counter-based random numbers ------------------------------------------------------

// A 32-bit integer hash with low bias (xorshift-multiply, two rounds).
fn mix32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Per row: two keys from (seed, stream, step).
fn rowKeys(info: vec2u) -> vec2u {
  let k1 = mix32(mix32(mix32(params.seed ^ 0x243f6a88u) ^ info.x) ^ info.y);
  return vec2u(k1, mix32(k1 ^ 0x9e3779b9u));
}

// g = -log(-log(u)) with u = (top 24 bits + 0.5) / 2^24; E = -log(u) is computed from w = 1 - u
// by its series when w is small (log(u) loses its relative precision near u = 1).
fn gumbel(keys: vec2u, id: u32) -> f32 {
  let bits = mix32(mix32(id ^ keys.x) + keys.y) >> 8u;
  let rest = 0xffffffu - bits; // w = (rest + 0.5) / 2^24
  var e: f32;
  if (rest < 0x100000u) {
    let w = (f32(rest) + 0.5) * 5.9604644775390625e-8;
    e = w * (1.0 + w * (0.5 + w * (1.0 / 3.0 + w * (0.25 + w * (0.2 + w * (1.0 / 6.0 + w / 7.0))))));
  } else {
    e = -log((f32(bits) + 0.5) * 5.9604644775390625e-8);
  }
  return -log(e);
}

// ---- chunk and merge ------------------------------------------------------------------------

struct St {
  m: f32,
  s: f32,
  sT: f32,
  best: f32,
  bestX: f32,
  bestId: u32,
}

var<workgroup> red: array<St, WG>;

fn emptySt() -> St {
  return St(NEG_BIG, 0.0, 0.0, NEG_BIG, 0.0, NONE);
}

fn better(aScore: f32, aId: u32, bScore: f32, bId: u32) -> bool {
  return bScore > aScore || (bScore == aScore && bId < aId);
}

fn mergeSt(a: St, b: St) -> St {
  let m = max(a.m, b.m);
  var r = a;
  r.m = m;
  r.s = a.s * exp(a.m - m) + b.s * exp(b.m - m);
  r.sT = a.sT * exp((a.m - m) * params.invT) + b.sT * exp((b.m - m) * params.invT);
  if (better(a.best, a.bestId, b.best, b.bestId)) {
    r.best = b.best;
    r.bestX = b.bestX;
    r.bestId = b.bestId;
  }
  return r;
}

fn loadSt(lo: vec4u, hi: vec4u) -> St {
  let f = bitcast<vec4f>(lo);
  return St(f.x, f.y, f.z, f.w, bitcast<f32>(hi.x), hi.y);
}

fn storeLo(st: St) -> vec4u {
  return bitcast<vec4u>(vec4f(st.m, st.s, st.sT, st.best));
}

fn storeHi(st: St) -> vec4u {
  return vec4u(bitcast<u32>(st.bestX), st.bestId, 0u, 0u);
}

@compute @workgroup_size(WG)
fn chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.z * nwg.y + wid.y;
  if (row >= params.rows) {
    return;
  }
  let t = lid.x;
  let c1 = min(params.cols, (wid.x + 1u) * WG * PER);
  let keys = rowKeys(rowInfo[row]);
  let base = row * params.ld;
  let invT = params.invT;
  var st = emptySt();
  for (var c = wid.x * WG * PER + t; c < c1; c += WG) {
    let v = x[base + c];
    if (v > st.m) {
      let d = st.m - v;
      st.s = st.s * exp(d) + 1.0;
      if (params.tempered == 1u) {
        st.sT = st.sT * exp(d * invT) + 1.0;
      }
      st.m = v;
    } else {
      st.s += exp(v - st.m);
      if (params.tempered == 1u) {
        st.sT += exp((v - st.m) * invT);
      }
    }
    // columns rise within an invocation, so a strict > keeps the lower id on ties
    if (params.mode == 1u) {
      // a token whose score cannot reach the best even with the largest noise is skipped
      if (v * invT + GUMBEL_MAX >= st.best) {
        let score = v * invT + gumbel(keys, params.colStart + c);
        if (score > st.best) {
          st.best = score;
          st.bestX = v;
          st.bestId = params.colStart + c;
        }
      }
    } else if (v > st.best) {
      st.best = v;
      st.bestX = v;
      st.bestId = params.colStart + c;
    }
  }
  red[t] = st;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    if (t < h) {
      red[t] = mergeSt(red[t], red[t + h]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let r = red[0];
    let o = (row * params.parts + wid.x) * 2u;
    part[o] = storeLo(r);
    part[o + 1u] = storeHi(r);
  }
}

@compute @workgroup_size(64)
fn merge(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
    @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid.x;
  if (row >= params.rows) {
    return;
  }
  var st: St;
  if (params.first == 1u) {
    st = emptySt();
  } else {
    st = loadSt(state[2u * row], state[2u * row + 1u]);
  }
  for (var p = 0u; p < params.parts; p++) {
    let o = (row * params.parts + p) * 2u;
    st = mergeSt(st, loadSt(partIn[o], partIn[o + 1u]));
  }
  state[2u * row] = storeLo(st);
  state[2u * row + 1u] = storeHi(st);
}

// ---- finish ---------------------------------------------------------------------------------

fn lseOf(row: u32) -> f32 {
  let st = bitcast<vec4f>(stateIn[2u * row]);
  return st.x + log(st.y);
}

fn emit(row: u32, id: u32, logit: f32, exact: u32) {
  out[3u * row] = id;
  out[3u * row + 1u] = bitcast<u32>(logit - lseOf(row));
  out[3u * row + 2u] = exact;
}

@compute @workgroup_size(64)
fn finish(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
    @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid.x;
  if (row >= params.rows) {
    return;
  }
  let hi = stateIn[2u * row + 1u];
  emit(row, hi.y, bitcast<f32>(hi.x), 1u);
}

@compute @workgroup_size(64)
fn finish_candidates(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
    @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid.x;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.k;
  var n = 0u;
  while (n < params.k && ids[base + n] != NONE) {
    n++;
  }
  let topK = params.topK > 0u;
  let lim = select(n, min(params.topK, n), topK);
  let v0 = vals[base];
  let invT = params.invT;
  var keep = lim;
  var exact = 1u;
  if (params.topP < 1.0) {
    // the nucleus: weights relative to the best candidate (= the row max), over the top-k set
    // or, without top-k, over the whole vocabulary (the tempered sum of the state)
    var total = 0.0;
    if (topK) {
      for (var i = 0u; i < lim; i++) {
        total += exp((vals[base + i] - v0) * invT);
      }
    } else {
      let st = bitcast<vec4f>(stateIn[2u * row]);
      total = st.z * exp((st.x - v0) * invT);
    }
    let goal = params.topP * total;
    var cum = 0.0;
    var cut = lim;
    for (var i = 0u; i < lim; i++) {
      cum += exp((vals[base + i] - v0) * invT);
      if (cum >= goal) {
        cut = i;
        break;
      }
    }
    if (cut < lim) {
      let vcut = vals[base + cut];
      keep = cut + 1u;
      while (keep < lim && vals[base + keep] == vcut) {
        keep++;
      }
    }
    // Without top-k the nucleus is exact only when it ends before the last of a full list
    // (tokens outside the list could tie with it, or be needed to reach the mass).
    if (!topK && keep == lim && n == params.k && params.k < params.vocab) {
      exact = 0u;
    }
  }
  let keys = rowKeys(rowInfoC[row]);
  var best = NEG_BIG;
  var pick = 0u;
  for (var i = 0u; i < keep; i++) {
    let id = ids[base + i];
    let score = vals[base + i] * invT + gumbel(keys, id);
    if (score > best || (score == best && id < ids[base + pick])) {
      best = score;
      pick = i;
    }
  }
  emit(row, ids[base + pick], vals[base + pick], exact);
}
