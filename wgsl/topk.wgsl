// Top-k over a vocabulary processed in column chunks (k <= 128). Per token row a running list
// (vals, ids) of k entries, sorted by value descending and id ascending, is merged with each
// chunk (x: rows x cols, row stride ld, vocabulary ids colStart..colStart+cols).
//   chunk   one workgroup of 256 per row. The candidates are the running entries (unless
//           first = 1) followed by the chunk's columns; each invocation owns a contiguous
//           segment of them. A 4-pass radix select (8 bits per pass, shared histogram) finds
//           the k-th largest key; the entries above it and, in candidate order, enough entries
//           equal to it are compacted by prefix sums (deterministic, no atomics on the output),
//           ranked by (value desc, id asc) and written back. Fewer than k candidates leave
//           (-inf, 0xffffffff) in the tail.
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

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (N, ld) chunk of logits
@group(0) @binding(2) var<storage, read_write> vals: array<f32>;  // (N, k)
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;   // (N, k)
// finish
@group(0) @binding(1) var<storage, read> stats: array<vec2f>;     // (N): (m, s)

var<workgroup> hist: array<atomic<u32>, WG>;
var<workgroup> cntGt: array<u32, WG>;
var<workgroup> cntEq: array<u32, WG>;
var<workgroup> selV: array<f32, KMAX>;
var<workgroup> selI: array<u32, KMAX>;
var<workgroup> found: vec2u; // (bin, still needed)

fn orderKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn candValue(row: u32, c: u32, nk: u32) -> f32 {
  if (c < nk) {
    return vals[row * params.k + c];
  }
  return x[row * params.ld + c - nk];
}

fn candId(row: u32, c: u32, nk: u32) -> u32 {
  if (c < nk) {
    return ids[row * params.k + c];
  }
  return params.colStart + c - nk;
}

@compute @workgroup_size(WG)
fn chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let t = lid.x;
  let nk = select(params.k, 0u, params.first == 1u);
  let n = nk + params.cols;
  let kk = min(params.k, n);
  let seg = (n + WG - 1u) / WG;
  let c0 = min(n, t * seg);
  let c1 = min(n, c0 + seg);

  // Radix select of the kk-th largest key, 8 bits per pass from the top.
  var prefix = 0u;
  var mask = 0u;
  var need = kk;
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[t], 0u);
    workgroupBarrier();
    for (var c = c0; c < c1; c++) {
      let key = orderKey(candValue(row, c, nk));
      if ((key & mask) == prefix) {
        atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
    }
    workgroupBarrier();
    if (t == 0u) {
      var above = 0u;
      var b = 255u;
      loop {
        let h = atomicLoad(&hist[b]);
        if (above + h >= need || b == 0u) {
          break;
        }
        above += h;
        b -= 1u;
      }
      found = vec2u(b, need - above);
    }
    workgroupBarrier();
    let f = found;
    prefix |= f.x << shift;
    mask |= 255u << shift;
    need = f.y;
    workgroupBarrier();
  }
  let thresh = prefix;

  // Compact: counts per invocation, exclusive prefix sums, then writes in candidate order.
  var gt = 0u;
  var eq = 0u;
  for (var c = c0; c < c1; c++) {
    let key = orderKey(candValue(row, c, nk));
    gt += select(0u, 1u, key > thresh);
    eq += select(0u, 1u, key == thresh);
  }
  cntGt[t] = gt;
  cntEq[t] = eq;
  workgroupBarrier();
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
  }
  workgroupBarrier();
  var og = cntGt[t];
  var oe = cntEq[t];
  let totalGt = kk - need;
  for (var c = c0; c < c1; c++) {
    let v = candValue(row, c, nk);
    let key = orderKey(v);
    if (key > thresh) {
      selV[og] = v;
      selI[og] = candId(row, c, nk);
      og++;
    } else if (key == thresh) {
      if (oe < need) {
        selV[totalGt + oe] = v;
        selI[totalGt + oe] = candId(row, c, nk);
      }
      oe++;
    }
  }
  workgroupBarrier();

  // Rank sort of the kk selected entries; the tail beyond kk is empty.
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
