// The online log-sum-exp of a vocabulary processed in column chunks (x is one chunk: rows x
// cols, row stride ld). The per-row state stats = (m, s) (max, sum of exp(x - m)) is updated
// chunk by chunk; lse = m + log(s) at any time after the last chunk. The full (N, V) is never
// needed: consumers (cross-entropy, top-k, the CKD loss) read lse from stats.
//   lse_chunk     merge one chunk into stats (first = 1 starts afresh); one workgroup per row,
//                 invocations stride the columns with their own (m, s), then a tree merge;
//                 row = wid.y*nwg.x + wid.x. WG must be a power of two.

struct Params {
  rows: u32,
  cols: u32,
  ld: u32,     // row stride of the chunk buffers (elements)
  first: u32,  // 1 for the first chunk of a pass
}

override WG: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // (N, ld) chunk of logits
@group(0) @binding(2) var<storage, read_write> stats: array<vec2f>; // (N): (m, s)

var<workgroup> redM: array<f32, WG>;
var<workgroup> redS: array<f32, WG>;

fn merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn lse_chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  var st = vec2f(NEG_BIG, 0.0);
  let base = row * params.ld;
  for (var c = lid.x; c < params.cols; c += WG) {
    let v = x[base + c];
    if (v > st.x) {
      st = vec2f(v, st.y * exp(st.x - v) + 1.0);
    } else {
      st.y += exp(v - st.x);
    }
  }
  redM[lid.x] = st.x;
  redS[lid.x] = st.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid.x < s) {
      let r = merge(vec2f(redM[lid.x], redS[lid.x]), vec2f(redM[lid.x + s], redS[lid.x + s]));
      redM[lid.x] = r.x;
      redS[lid.x] = r.y;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let chunk = vec2f(redM[0], redS[0]);
    stats[row] = select(merge(stats[row], chunk), chunk, params.first == 1u);
  }
}
