// CKD loss (STAR): per token row, the teacher's top-k divergence (fkl | rkl | akl), the tail mass
// the student puts on its own top-m tokens outside the teacher's top-k, and cross-entropy, mixed
// by kd_ratio; and the gradient w.r.t. the student's logits in closed form. Formulas and their
// source: train/ckd_loss_ref.ts (the float64 reference this kernel is judged against).
// The vocabulary arrives in column chunks [c0, c0 + cols) of the LM head, never all at once:
//   stats     per chunk; one workgroup per row: online (max, sum exp) merged into the row's
//             running state, and the logits at the teacher's ids and at the target gathered.
//   finish    once; one workgroup (FW = 128 ≥ k, m invocations) per row: lse, the loss parts and
//             the sparse gradient g_i = ∂loss/∂log p_i on T ∪ (M∖T) ∪ {y}, and G = Σ g_i.
//   backward  per chunk; one invocation per (row, column): dz = w · (−p·G)  (=, overwrites).
//   scatter   per chunk, after backward; one invocation per (row, sparse entry): dz[id] += w · g.
//             Entries are distinct ids per row (g = 0 entries are skipped), so no races.
//   *_inplace the same two, writing the gradient over the logits (logits_rw).
// The student's top-m (ids and raw logits) comes from the top-k op. Rows with weight 0 (prompt
// or padding positions) get a zero gradient. Legend: N rows, C chunk columns, k teacher top-k,
// m student top-m; WORK = 8 + k + m floats of per-row state.

struct Params {
  rows: u32,      // N
  cols: u32,      // C, columns of this chunk
  c0: u32,        // first vocabulary id of this chunk
  ld: u32,        // row stride of logits / dlogits (elements)
  base: u32,      // element offset of (row 0, column c0) in logits / dlogits
  k: u32,
  m: u32,
  first: u32,     // 1 on the first chunk: start the running state
  kl_type: u32,   // 0 fkl, 1 rkl, 2 akl
  l1_coef: f32,   // λ_tail
  kd_ratio: f32,
  pad: u32,
}

override WG: u32 = 256u;
const FW: u32 = 128u;
const NEG: f32 = -3.4028235e38;   // "−inf" that keeps exp() and max() free of NaN
const AKL_HEAD_MASS: f32 = 0.5;

@group(0) @binding(0) var<uniform> params: Params;
// stats
@group(0) @binding(1) var<storage, read> logits: array<f32>;         // (N, ld) chunk window
@group(0) @binding(2) var<storage, read> teacher_ids: array<u32>;    // (N, k) descending
@group(0) @binding(3) var<storage, read> row_info: array<u32>;       // (N, 2) target, weight bits
@group(0) @binding(4) var<storage, read_write> work: array<f32>;     // (N, 8 + k + m)
// finish (work stays at binding 4)
@group(0) @binding(1) var<storage, read> teacher_logprobs: array<f32>; // (N, k)
@group(0) @binding(5) var<storage, read> topm_ids: array<u32>;       // (N, m)
@group(0) @binding(6) var<storage, read> topm_logits: array<f32>;    // (N, m) raw logits
@group(0) @binding(7) var<storage, read_write> parts: array<f32>;    // (N, 8)
// backward and scatter (logits at 1, teacher_ids at 2, row_info at 3, work at 4, topm_ids at 5)
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;  // (N, ld) chunk window
// backward_inplace and scatter_inplace: the gradient overwrites the logits
@group(0) @binding(1) var<storage, read_write> logits_rw: array<f32>; // (N, ld) chunk window

// work layout per row: [0] max, [1] sum exp, [2] target logit, [3] lse, [4] G, [5] g at the
// target when it is in neither T nor M∖T, [8, 8+k) logits at T then g on T, [8+k, 8+k+m) g on M.
fn work_stride() -> u32 {
  return 8u + params.k + params.m;
}

fn weight_of(row: u32) -> f32 {
  return bitcast<f32>(row_info[2u * row + 1u]);
}

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let src = params.base + row * params.ld;
  let ws = row * work_stride();
  var mx = NEG;
  var s = 0.0;
  for (var c = lid.x; c < params.cols; c += WG) {
    let x = logits[src + c];
    if (x > mx) {
      s = s * exp(mx - x) + 1.0;
      mx = x;
    } else {
      s += exp(x - mx);
    }
  }
  red_m[lid.x] = mx;
  red_s[lid.x] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    if (lid.x < h) {
      let m1 = red_m[lid.x];
      let m2 = red_m[lid.x + h];
      let mm = max(m1, m2);
      red_s[lid.x] = red_s[lid.x] * exp(m1 - mm) + red_s[lid.x + h] * exp(m2 - mm);
      red_m[lid.x] = mm;
    }
    workgroupBarrier();
  }
  // the teacher's ids and the target that fall in this chunk
  let c1 = params.c0 + params.cols;
  for (var j = lid.x; j < params.k; j += WG) {
    let id = teacher_ids[row * params.k + j];
    if (id >= params.c0 && id < c1) {
      work[ws + 8u + j] = logits[src + id - params.c0];
    }
  }
  if (lid.x == 0u) {
    let y = row_info[2u * row];
    if (params.first == 1u) {
      work[ws] = red_m[0];
      work[ws + 1u] = red_s[0];
      work[ws + 2u] = 0.0;
    } else {
      let m0 = work[ws];
      let mm = max(m0, red_m[0]);
      work[ws + 1u] = work[ws + 1u] * exp(m0 - mm) + red_s[0] * exp(red_m[0] - mm);
      work[ws] = mm;
    }
    if (y >= params.c0 && y < c1) {
      work[ws + 2u] = logits[src + y - params.c0];
    }
  }
}

var<workgroup> f_red: array<f32, FW>;
var<workgroup> f_ids: array<u32, FW>;
var<workgroup> f_p: array<f32, FW>;
var<workgroup> f_head: array<u32, FW>;
var<workgroup> f_y_found: u32;

fn f_sum(v: f32, lid: u32) -> f32 {
  f_red[lid] = v;
  workgroupBarrier();
  for (var h = FW / 2u; h > 0u; h = h / 2u) {
    if (lid < h) {
      f_red[lid] += f_red[lid + h];
    }
    workgroupBarrier();
  }
  let total = f_red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(FW)
fn finish(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  // every invocation of a workgroup takes part in the barriers; out-of-range rows do no I/O
  let live = row < params.rows;
  let r = select(0u, row, live);
  let k = params.k;
  let m = params.m;
  let j = lid.x;
  let ws = r * work_stride();
  let lse = work[ws] + log(work[ws + 1u]);
  let y = row_info[2u * r];
  let ratio = params.kd_ratio;
  let use_kd = ratio > 0.0;
  let w_kd = select(1.0, ratio, ratio < 1.0);
  let w_ce = select(0.0, 1.0 - ratio, ratio < 1.0);

  // teacher entry j: P_j, s_j = log p_S, q_j
  var t = 0.0;
  var p_t = 0.0;
  var s_j = 0.0;
  var q_j = 0.0;
  if (j < k) {
    t = teacher_logprobs[r * k + j];
    p_t = exp(t);
    s_j = work[ws + 8u + j] - lse;
    q_j = exp(s_j);
    f_ids[j] = teacher_ids[r * k + j];
    f_p[j] = p_t;
  }
  if (j == 0u) {
    f_y_found = 0u;
  }
  let fkl = f_sum(select(0.0, p_t * (t - s_j), j < k && use_kd), j);
  let rkl = f_sum(select(0.0, q_j * (s_j - t), j < k && use_kd), j);
  // AKL head: entries whose preceding cumulative teacher mass is below 0.5 (the first always)
  if (j == 0u) {
    var cum = 0.0;
    for (var i = 0u; i < k; i++) {
      f_head[i] = select(0u, 1u, i == 0u || cum < AKL_HEAD_MASS);
      cum += f_p[i];
    }
  }
  workgroupBarrier();
  let margin = select(0.0, abs(p_t - q_j), j < k && use_kd);
  let is_head = j < k && f_head[j] == 1u;
  let gh = f_sum(select(0.0, margin, is_head), j);
  let gt = f_sum(select(0.0, margin, !is_head), j);
  let d = gh + gt;
  var kl = fkl;
  if (params.kl_type == 1u) {
    kl = rkl;
  } else if (params.kl_type == 2u) {
    kl = select(0.0, (gh * fkl + gt * rkl) / d, d != 0.0);
  }
  // ∂kl/∂s_j on the teacher's top-k
  var g_t = 0.0;
  if (j < k && use_kd) {
    let d_f = -p_t;
    let d_r = q_j * (s_j - t + 1.0);
    if (params.kl_type == 0u) {
      g_t = d_f;
    } else if (params.kl_type == 1u) {
      g_t = d_r;
    } else if (d != 0.0) {
      let div_j = select(rkl, fkl, is_head);
      g_t = (gh * d_f + gt * d_r) / d + (div_j - kl) / d * sign(q_j - p_t) * q_j;
    }
    g_t = w_kd * g_t;
    if (f_ids[j] == y) {
      g_t -= w_ce;
      f_y_found = 1u;
    }
  }
  // the student's top-m entry j: tail mass when outside the teacher's top-k
  var tail_j = 0.0;
  var g_m = 0.0;
  if (j < m && use_kd && params.l1_coef > 0.0) {
    let id = topm_ids[r * m + j];
    var in_t = false;
    for (var i = 0u; i < k; i++) {
      if (f_ids[i] == id) {
        in_t = true;
      }
    }
    if (!in_t) {
      tail_j = exp(topm_logits[r * m + j] - lse);
      g_m = w_kd * params.l1_coef * tail_j;
      if (id == y) {
        g_m -= w_ce;
        f_y_found = 1u;
      }
    }
  }
  let tail = f_sum(tail_j, j);
  // f_sum's barriers made f_y_found visible
  let g_y = select(-w_ce, 0.0, f_y_found == 1u);
  let g_sum = f_sum(g_t + g_m, j) + g_y;
  let ce = lse - work[ws + 2u];
  let kd = kl + params.l1_coef * tail;
  let loss = select(ratio * select(0.0, kd, use_kd) + (1.0 - ratio) * ce, kd, ratio >= 1.0);
  if (!live) {
    return;
  }
  if (j < k) {
    work[ws + 8u + j] = g_t;
  }
  if (j < m) {
    work[ws + 8u + k + j] = g_m;
  }
  if (j == 0u) {
    work[ws + 3u] = lse;
    work[ws + 4u] = g_sum;
    work[ws + 5u] = g_y;
    let o = r * 8u;
    parts[o] = loss;
    parts[o + 1u] = kl;
    parts[o + 2u] = fkl;
    parts[o + 3u] = rkl;
    parts[o + 4u] = tail;
    parts[o + 5u] = ce;
    parts[o + 6u] = lse;
    parts[o + 7u] = g_sum;
  }
}

// dz at element i of the chunk (dense part), or none when i is out of range
fn dense_grad(i: u32, z: f32) -> f32 {
  let row = i / params.cols;
  let w = weight_of(row);
  let ws = row * work_stride();
  if (w == 0.0) {
    return 0.0;
  }
  return -w * exp(z - work[ws + 3u]) * work[ws + 4u];
}

fn chunk_at(i: u32) -> u32 {
  return params.base + (i / params.cols) * params.ld + i % params.cols;
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.rows * params.cols) {
    return;
  }
  let at = chunk_at(i);
  dlogits[at] = dense_grad(i, logits[at]);
}

@compute @workgroup_size(WG)
fn backward_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.rows * params.cols) {
    return;
  }
  let at = chunk_at(i);
  logits_rw[at] = dense_grad(i, logits_rw[at]);
}

struct Sparse {
  at: u32,  // element index in the chunk window
  g: f32,   // w · g, 0 for none
}

// the sparse entry e = i % (k + m + 1) of row i / (k + m + 1)
fn sparse_entry(i: u32) -> Sparse {
  let per_row = params.k + params.m + 1u;
  let row = i / per_row;
  let e = i % per_row;
  let w = weight_of(row);
  let ws = row * work_stride();
  var id: u32;
  var g: f32;
  if (e < params.k) {
    id = teacher_ids[row * params.k + e];
    g = work[ws + 8u + e];
  } else if (e < params.k + params.m) {
    id = topm_ids[row * params.m + e - params.k];
    g = work[ws + 8u + e];
  } else {
    id = row_info[2u * row];
    g = work[ws + 5u];
  }
  if (w == 0.0 || g == 0.0 || id < params.c0 || id >= params.c0 + params.cols) {
    return Sparse(0u, 0.0);
  }
  let at = params.base + row * params.ld + id - params.c0;
  return Sparse(at, w * g);
}

@compute @workgroup_size(WG)
fn scatter(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.rows * (params.k + params.m + 1u)) {
    return;
  }
  let s = sparse_entry(i);
  if (s.g != 0.0) {
    dlogits[s.at] += s.g;
  }
}

@compute @workgroup_size(WG)
fn scatter_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.rows * (params.k + params.m + 1u)) {
    return;
  }
  let s = sparse_entry(i);
  if (s.g != 0.0) {
    logits_rw[s.at] += s.g;
  }
}

// reduce: acc[j] += Σ_rows w · parts[row, j] for the 8 part columns, one workgroup, rows in a
// fixed order (deterministic). With w = 1/(targets · micro-batches) the accumulator ends the
// step holding the step's means (loss, kl, fkl, rkl, tail, ce; lse and G are summed too).
@group(0) @binding(1) var<storage, read> parts_r: array<f32>;        // (N, 8)
@group(0) @binding(2) var<storage, read> row_info_r: array<u32>;     // (N, 2)
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;      // (8)

var<workgroup> r_red: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce(@builtin(local_invocation_id) lid: vec3u) {
  for (var j = 0u; j < 8u; j++) {
    var s = 0.0;
    for (var r = lid.x; r < params.rows; r += WG) {
      let w = bitcast<f32>(row_info_r[2u * r + 1u]);
      if (w != 0.0) {
        s += w * parts_r[r * 8u + j];
      }
    }
    r_red[lid.x] = s;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h = h / 2u) {
      if (lid.x < h) {
        r_red[lid.x] += r_red[lid.x + h];
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) {
      acc[j] += r_red[0];
    }
    workgroupBarrier();
  }
}
