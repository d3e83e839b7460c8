// The Sim-RL token loss as STAR's OpenRLHF run computes it (PPO clipped objective plus a KL
// estimate against the frozen reference; train/simrl_loss_ref.ts is the float64 reference),
// per response-token row, from the current log-probs l (the vocabulary pass's TokenLogprobs),
// l_old, l_ref, the advantage A and the row's weight w = 1/(M*T_b):
//   forward  one invocation per row: ratio = exp(l - l_old), surr1 = ratio*A,
//            surr2 = clamp(ratio, 1-eps, 1+eps)*A, pg = -min(surr1, surr2), clipped = surr2 < surr1;
//            d = l - l_ref, kl = k1 d | k2 d^2/2 | k3 exp(-d)-1+d clamped to [-10, 10] (zero
//            gradient where the clamp binds, passing at the bound itself, as torch.clamp);
//            dLoss = -w*(dpg/dl + beta*dkl/dl), the weight of -l in the cross-entropy backward;
//            parts = (pg, kl, clipped, l_old - l).
//   reduce   one workgroup, invocations stride the rows: acc[j] += sum_r w_r*parts[r][j], the
//            step's means of the micro-batch token means, accumulated on the GPU.
// Row index = (wid.y*nwg.x + wid.x)*WG + lid.x. Legend: N response-token rows.

struct Params {
  rows: u32,      // N
  estimator: u32, // 1 k1, 2 k2, 3 k3
  eps_clip: f32,
  beta: f32,      // init_kl_coef (0 when the KL is not in the loss)
}

override WG: u32 = 256u;
const KL_CLAMP: f32 = 10.0;

@group(0) @binding(0) var<uniform> params: Params;
// forward
@group(0) @binding(1) var<storage, read> logprobs: array<f32>;       // (N) l
@group(0) @binding(2) var<storage, read> rowdata: array<vec4f>;      // (N) (l_old, l_ref, A, w)
@group(0) @binding(3) var<storage, read_write> dLoss: array<f32>;    // (N)
@group(0) @binding(4) var<storage, read_write> parts: array<vec4f>;  // (N) (pg, kl, clip, ppo_kl)
// reduce (rowdata stays at binding 2)
@group(0) @binding(1) var<storage, read> parts_r: array<vec4f>;      // (N)
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;      // (4)

var<workgroup> red: array<vec4f, WG>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let r = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (r >= params.rows) {
    return;
  }
  let l = logprobs[r];
  let row = rowdata[r];
  let a = row.z;
  let w = row.w;
  let ratio = exp(l - row.x);
  let surr1 = ratio * a;
  let surr2 = clamp(ratio, 1.0 - params.eps_clip, 1.0 + params.eps_clip) * a;
  let clipped = surr2 < surr1;
  let pg = -min(surr1, surr2);
  let dpg = select(-a * ratio, 0.0, clipped);
  let d = l - row.y;
  var kl = d;
  var dkl = 1.0;
  if (params.estimator == 2u) {
    kl = 0.5 * d * d;
    dkl = d;
  } else if (params.estimator == 3u) {
    kl = exp(-d) - 1.0 + d;
    dkl = 1.0 - exp(-d);
  }
  if (kl > KL_CLAMP || kl < -KL_CLAMP) {
    kl = clamp(kl, -KL_CLAMP, KL_CLAMP);
    dkl = 0.0;
  }
  dLoss[r] = -w * (dpg + params.beta * dkl);
  parts[r] = vec4f(pg, kl, select(0.0, 1.0, clipped), row.x - l);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(local_invocation_id) lid: vec3u) {
  var s = vec4f(0.0);
  for (var r = lid.x; r < params.rows; r += WG) {
    s += rowdata[r].w * parts_r[r];
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    if (lid.x < h) {
      red[lid.x] += red[lid.x + h];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    for (var j = 0u; j < 4u; j++) {
      acc[j] += red[0][j];
    }
  }
}
