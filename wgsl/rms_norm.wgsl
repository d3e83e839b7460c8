// RMSNorm (Qwen3): y = x / sqrt(mean(x^2) + eps) * w over rows of `dim` values, saving
// rstd = 1/rms per row for the backward. Also serves q_norm/k_norm (rows = T*H, dim = E).
//   forward          one workgroup per row; invocations stride over the row, tree reduction.
//   backward         dx = rstd*w*dy - x*rstd^3/dim * sum(dy*w*x), one workgroup per row (=).
//   backward_weight  dWeight[i] += sum_rows dy*x*rstd, one invocation per column, rows in
//                    order (deterministic, no atomics; a GPU would rather split the rows).
// Rows are folded into a 2-D grid: row = wid.y * nwg.x + wid.x. WG must be a power of two.

struct Params {
  rows: u32,
  dim: u32,
  eps: f32,
  pad: u32,
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // (rows, dim)
@group(0) @binding(2) var<storage, read> weight: array<f32>;       // (dim)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;      // (rows, dim) forward
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;   // (rows)
// backward
@group(0) @binding(3) var<storage, read> dy: array<f32>;           // (rows, dim)
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;     // (rows, dim)
// backward_weight (binding 2 is the gradient instead of the weight)
@group(0) @binding(2) var<storage, read_write> dWeight: array<f32>; // (dim)

var<workgroup> red: array<f32, WG>;

fn reduceSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let dim = params.dim;
  let base = row * dim;
  var ss = 0.0;
  for (var i = lid.x; i < dim; i += WG) {
    let v = x[base + i];
    ss += v * v;
  }
  let s = inverseSqrt(reduceSum(ss, lid.x) / f32(dim) + params.eps);
  for (var i = lid.x; i < dim; i += WG) {
    y[base + i] = x[base + i] * s * weight[i];
  }
  if (lid.x == 0u) {
    rstd[row] = s;
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let dim = params.dim;
  let base = row * dim;
  var acc = 0.0;
  for (var i = lid.x; i < dim; i += WG) {
    acc += dy[base + i] * weight[i] * x[base + i];
  }
  let dotp = reduceSum(acc, lid.x);
  let s = rstd[row];
  let c = s * s * s / f32(dim) * dotp;
  for (var i = lid.x; i < dim; i += WG) {
    dx[base + i] = s * weight[i] * dy[base + i] - x[base + i] * c;
  }
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let dim = params.dim;
  if (i >= dim) {
    return;
  }
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    acc += dy[r * dim + i] * x[r * dim + i] * rstd[r];
  }
  dWeight[i] += acc;
}
