// The optimizer step over f32 master weights, and the global gradient norm with clipping, all
// without a readback: the clip factor is computed on the GPU into `clip` and read by AdamW.
//   sumsq       partial sums of squares of one tensor: workgroup w sums the elements
//               w*WG + lid (stride nwg*WG) and writes partials[slot + w]; fixed order, no atomics.
//   finish      one workgroup: norm = sqrt(sum of all partials), clip = (norm, scale) with
//               scale = min(1, maxNorm / (norm + 1e-6)); a non-finite norm gives scale 1.
//   adamw       PyTorch AdamW with g = grad * clip.scale (when useClip): decoupled decay
//               p *= 1 - lr*wd, bias-corrected moments; skipped entirely when the norm is not
//               finite (moments untouched; the trainer sees the norm and skips the step).
// lr, betas and the bias corrections arrive per step in the Params uniform, so one pipeline
// serves every step. Element kernels fold the grid: flat = (wid.y*nwg.x + wid.x)*WG + lid.x.

struct Params {
  n: u32,
  slot: u32,      // sumsq: first partial slot; finish: number of partials
  useClip: u32,   // adamw: 1 to scale the gradient by clip.scale and skip on a non-finite norm
  pad0: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  decay: f32,     // 1 - lr * weight_decay
  stepSize: f32,  // lr / (1 - beta1^t)
  bc2Sqrt: f32,   // sqrt(1 - beta2^t)
  maxNorm: f32,   // finish
}

override WG: u32 = 256u;
const F32_MAX: f32 = 3.40282347e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // (n) sumsq input
@group(0) @binding(2) var<storage, read_write> partials: array<f32>; // (slots)
// finish / adamw
@group(0) @binding(1) var<storage, read_write> clip: array<f32>;     // (2): norm, scale
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;     // (n)
@group(0) @binding(3) var<storage, read_write> param: array<f32>;    // (n)
@group(0) @binding(4) var<storage, read_write> m: array<f32>;        // (n)
@group(0) @binding(5) var<storage, read_write> v: array<f32>;        // (n)

var<workgroup> red: array<f32, WG>;

fn reduceSum(val: f32, lid: u32) -> f32 {
  red[lid] = val;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = wid.x * WG + lid.x; i < params.n; i += nwg.x * WG) {
    let g = x[i];
    acc += g * g;
  }
  let total = reduceSum(acc, lid.x);
  if (lid.x == 0u) {
    partials[params.slot + wid.x] = total;
  }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = lid.x; i < params.slot; i += WG) {
    acc += partials[i];
  }
  let norm = sqrt(reduceSum(acc, lid.x));
  if (lid.x == 0u) {
    let coef = params.maxNorm / (norm + 1e-6);
    clip[0] = norm;
    clip[1] = select(1.0, coef, norm <= F32_MAX && coef < 1.0);
  }
}

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.n) {
    return;
  }
  var g = grad[i];
  if (params.useClip == 1u) {
    if (!(clip[0] <= F32_MAX)) {
      return;
    }
    g *= clip[1];
  }
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = param[i] * params.decay - params.stepSize * mi / (sqrt(vi) / params.bc2Sqrt + params.eps);
}
