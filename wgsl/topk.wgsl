// Top-k over a vocabulary processed in column chunks (k <= 128). Per token row a running list
// (vals, ids) of k entries, sorted by value descending and id ascending, is merged with each
// chunk (x: rows x cols, row stride ld, vocabulary ids colStart..colStart+cols).
//   chunk   one workgroup of 256 per row. The candidates are the running entries (unless
//           first = 1) followed by the chunk's columns; each invocation owns a contiguous
//           segment of them. The k-th largest segment maximum is a lower bound for the answer;
//           the (usually few hundred) candidates above it are copied to shared memory in
//           candidate order (when more than CAP, the steps below read the candidates again).
//           A 4-round radix select (8 bits per round, shared histogram) finds the k-th largest
//           key; the entries above it and, in candidate order, enough entries equal to it are
//           compacted by prefix sums (deterministic, no atomics on the output), ranked by
//           (value desc, id asc) and written back. Fewer than k candidates leave
//           (-inf, 0xffffffff) in the tail. Reads the chunk 3 times (6 when over CAP).
//   finish  vals -= lse per row (stats = (m, s) from softmax.wgsl): logits become log-probs.
// Keys map f32 to u32 so that unsigned order is float order.

struct Params {
  rows: u32,
  cols: u32,
  ld: u32,
  colStart: u32,
  k: u32,
  first: u32,
  pad0: u32,
  pad1: u32,
}

const WG: u32 = 256u;
const KMAX: u32 = 128u;
const NONE: u32 = 0xffffffffu;
const CAP: u32 = 1024u; // shared cache of candidates above the lower bound

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (N, ld) chunk of logits
@group(0) @binding(2) var<storage, read_write> vals: array<f32>;  // (N, k)
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;   // (N, k)
// finish
@group(0) @binding(1) var<storage, read> stats: array<vec2f>;     // (N): (m, s)

var<workgroup> hist: array<atomic<u32>, WG>;
var<workgroup> cntGt: array<u32, WG>;
var<workgroup> cntEq: array<u32, WG>;
var<workgroup> segKeys: array<u32, WG>;
var<workgroup> cacheKey: array<u32, CAP>;
var<workgroup> cacheIdx: array<u32, CAP>;
var<workgroup> selV: array<f32, KMAX>;
var<workgroup> selI: array<u32, KMAX>;
var<workgroup> found: vec2u; // (bin, still needed)
var<workgroup> total: u32;

var<private> row: u32;
var<private> nk: u32; // running entries among the candidates (0 on the first chunk)

fn orderKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn candValue(c: u32) -> f32 {
  if (c < nk) {
    return vals[row * params.k + c];
  }
  return x[row * params.ld + c - nk];
}

fn candId(c: u32) -> u32 {
  if (c < nk) {
    return ids[row * params.k + c];
  }
  return params.colStart + c - nk;
}

// Items are per-invocation ranges [a, b) of: 0 the segment maxima, 1 the shared cache of
// candidates, 2 the candidates themselves (global loads).
fn keyOf(mode: u32, i: u32) -> u32 {
  if (mode == 0u) {
    return segKeys[i];
  }
  if (mode == 1u) {
    return cacheKey[i];
  }
  return orderKey(candValue(i));
}

fn candOf(mode: u32, i: u32) -> u32 {
  return select(i, cacheIdx[i], mode == 1u);
}

// The kk-th largest key over all invocations' items with key >= lower, 8 bits per round from
// the top with a shared histogram; returns (that key, how many items equal to it are needed).
fn radixSelect(mode: u32, a: u32, b: u32, lower: u32, kk: u32, t: u32) -> vec2u {
  var prefix = 0u;
  var mask = 0u;
  var need = kk;
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[t], 0u);
    workgroupBarrier();
    for (var i = a; i < b; i++) {
      let key = keyOf(mode, i);
      if (key >= lower && (key & mask) == prefix) {
        atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
    }
    workgroupBarrier();
    if (t == 0u) {
      var above = 0u;
      var bin = 255u;
      loop {
        let h = atomicLoad(&hist[bin]);
        if (above + h >= need || bin == 0u) {
          break;
        }
        above += h;
        bin -= 1u;
      }
      found = vec2u(bin, need - above);
    }
    workgroupBarrier();
    let f = found;
    prefix |= f.x << shift;
    mask |= 255u << shift;
    need = f.y;
    workgroupBarrier();
  }
  return vec2u(prefix, need);
}

// Exclusive prefix sums of cntGt and cntEq in place (one invocation; 256 entries).
fn scanCounts(t: u32) {
  if (t == 0u) {
    var sg = 0u;
    var se = 0u;
    for (var i = 0u; i < WG; i++) {
      let g = cntGt[i];
      let e = cntEq[i];
      cntGt[i] = sg;
      cntEq[i] = se;
      sg += g;
      se += e;
    }
    total = sg;
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let t = lid.x;
  nk = select(params.k, 0u, params.first == 1u);
  let n = nk + params.cols;
  let kk = min(params.k, n);
  let seg = (n + WG - 1u) / WG;
  let c0 = min(n, t * seg);
  let c1 = min(n, c0 + seg);

  // 1. A lower bound: the kk-th largest segment maximum (kk segments reach it, so kk distinct
  //    candidates do). Usually only a few hundred candidates are above it.
  var segMax = 0u;
  for (var c = c0; c < c1; c++) {
    segMax = max(segMax, orderKey(candValue(c)));
  }
  segKeys[t] = segMax;
  workgroupBarrier();
  let lower = radixSelect(0u, t, t + 1u, 0u, kk, t).x;

  // 2. Count the candidates >= lower; if they fit, copy them (key, candidate index) into the
  //    shared cache in candidate order, so the selection below reads shared memory only.
  var above = 0u;
  for (var c = c0; c < c1; c++) {
    above += select(0u, 1u, orderKey(candValue(c)) >= lower);
  }
  cntGt[t] = above;
  cntEq[t] = 0u;
  workgroupBarrier();
  scanCounts(t);
  let m = total;
  let mode = select(2u, 1u, m <= CAP);
  if (mode == 1u) {
    var o = cntGt[t];
    for (var c = c0; c < c1; c++) {
      let key = orderKey(candValue(c));
      if (key >= lower) {
        cacheKey[o] = key;
        cacheIdx[o] = c;
        o++;
      }
    }
  }
  workgroupBarrier();
  let segM = (m + WG - 1u) / WG;
  let a = select(c0, min(m, t * segM), mode == 1u);
  let b = select(c1, min(m, t * segM + segM), mode == 1u);

  // 3. The exact kk-th largest key, then compaction: keys above it, and the first `need` items
  //    equal to it in candidate order, by prefix sums (deterministic, no atomics).
  let sel = radixSelect(mode, a, b, lower, kk, t);
  let thresh = sel.x;
  let need = sel.y;
  var gt = 0u;
  var eq = 0u;
  for (var i = a; i < b; i++) {
    let key = keyOf(mode, i);
    gt += select(0u, 1u, key > thresh);
    eq += select(0u, 1u, key == thresh);
  }
  workgroupBarrier();
  cntGt[t] = gt;
  cntEq[t] = eq;
  workgroupBarrier();
  scanCounts(t);
  var og = cntGt[t];
  var oe = cntEq[t];
  let totalGt = kk - need;
  for (var i = a; i < b; i++) {
    let key = keyOf(mode, i);
    if (key > thresh) {
      let c = candOf(mode, i);
      selV[og] = candValue(c);
      selI[og] = candId(c);
      og++;
    } else if (key == thresh) {
      if (oe < need) {
        let c = candOf(mode, i);
        selV[totalGt + oe] = candValue(c);
        selI[totalGt + oe] = candId(c);
      }
      oe++;
    }
  }
  workgroupBarrier();

  // 4. Rank sort of the kk selected entries by (value desc, id asc); the tail stays empty.
  if (t < kk) {
    let v = selV[t];
    let id = selI[t];
    var rank = 0u;
    for (var j = 0u; j < kk; j++) {
      let w = selV[j];
      let before = w > v || (w == v && (selI[j] < id || (selI[j] == id && j < t)));
      rank += select(0u, 1u, before);
    }
    vals[row * params.k + rank] = v;
    ids[row * params.k + rank] = id;
  } else if (t < params.k) {
    vals[row * params.k + t] = bitcast<f32>(0xff800000u);
    ids[row * params.k + t] = NONE;
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_id) lid: vec3u) {
  let flat = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (flat >= params.rows * params.k) {
    return;
  }
  let row = flat / params.k;
  let st = stats[row];
  vals[flat] -= st.x + log(st.y);
}
