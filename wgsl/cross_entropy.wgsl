// Cross-entropy against target ids, per vocabulary chunk (x: rows x cols of the chunk, row
// stride ld, vocabulary ids colStart..colStart+cols), once the row's online log-sum-exp state
// stats = (m, s) is complete (softmax.wgsl lse_chunk over every chunk).
//   forward   loss[r] = lse - x[r, target - colStart], written by the chunk holding the target;
//             a target of IGNORE (0xffffffff) gets loss 0 from the chunk with colStart 0.
//             One invocation per row.
//   logprob   loss[r] = log p(target) = -neg[r] - lse once stats are complete, where neg came from `forward` run
//             with stats (0, 1) (lse 0, so loss = -x[target]); 0 for ignored rows. Per row.
//   backward  dx = (exp(x - lse) - [id == target]) * dLoss[r]; 0 for ignored rows (=).
//             One invocation per element: column = wid.x*WG + lid.x, row = wid.z*nwg.y + wid.y
//             (rows folded into y and z; no integer division per element).

struct Params {
  rows: u32,
  cols: u32,
  ld: u32,
  colStart: u32,
}

override WG: u32 = 256u;
const IGNORE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (N, ld) chunk of logits
@group(0) @binding(2) var<storage, read> stats: array<vec2f>;     // (N): (m, s)
@group(0) @binding(3) var<storage, read> targets: array<u32>;     // (N)
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;  // (N) forward
// logprob: reads neg at binding 1, writes log-probs into `loss`
@group(0) @binding(1) var<storage, read> neg: array<f32>;         // (N) -x[target]
// backward
@group(0) @binding(4) var<storage, read> dLoss: array<f32>;       // (N)
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;    // (N, ld)

fn lse(row: u32) -> f32 {
  let st = stats[row];
  return st.x + log(st.y);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (row >= params.rows) {
    return;
  }
  let t = targets[row];
  let c = t - params.colStart;
  if (t == IGNORE) {
    if (params.colStart == 0u) {
      loss[row] = 0.0;
    }
  } else if (c < params.cols) {
    loss[row] = lse(row) - x[row * params.ld + c];
  }
}

@compute @workgroup_size(WG)
fn logprob(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (row >= params.rows) {
    return;
  }
  loss[row] = select(-neg[row] - lse(row), 0.0, targets[row] == IGNORE);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.z * nwg.y + wid.y;
  let c = wid.x * WG + lid.x;
  if (row >= params.rows || c >= params.cols) {
    return;
  }
  let i = row * params.ld + c;
  let t = targets[row];
  if (t == IGNORE) {
    dx[i] = 0.0;
    return;
  }
  let onehot = select(0.0, 1.0, params.colStart + c == t);
  dx[i] = (exp(x[i] - lse(row)) - onehot) * dLoss[row];
}
