// Rotary position embedding, rotate-half (HF Qwen3), in place on x (T, H, E):
//   forward   (x1, x2) <- (x1*cos - x2*sin, x2*cos + x1*sin) for the pair (i, i + E/2)
//   backward  the same with -sin (the inverse rotation; dx overwrites dy in place)
// The angle pos*theta^(-2i/E) comes as (cos, sin) from a table (P, E/2) built once on the host
// (f32 angle as HF, no range reduction needed here); pos = positions[t] + posOffset.
// One invocation per (token, head, pair), grid folded: flat = (wid.y*nwg.x + wid.x)*WG + lid.x.

struct Params {
  tokens: u32,
  heads: u32,
  half: u32,       // E / 2
  posOffset: u32,  // added to every position id (KV-cache offset)
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;  // (T, H, E)
@group(0) @binding(2) var<storage, read> positions: array<u32>; // (T)
@group(0) @binding(3) var<storage, read> table: array<vec2f>;   // (P, E/2): (cos, sin)

fn rotate(flat: u32, sign: f32) {
  let half = params.half;
  let n = params.tokens * params.heads * half;
  if (flat >= n) {
    return;
  }
  let i = flat % half;
  let th = flat / half;              // t * H + h
  let t = th / params.heads;
  let cs = table[(positions[t] + params.posOffset) * half + i];
  let base = th * 2u * half;
  let x1 = x[base + i];
  let x2 = x[base + i + half];
  let s = sign * cs.y;
  x[base + i] = x1 * cs.x - x2 * s;
  x[base + i + half] = x2 * cs.x + x1 * s;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  rotate((wid.y * nwg.x + wid.x) * WG + lid.x, 1.0);
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  rotate((wid.y * nwg.x + wid.x) * WG + lid.x, -1.0);
}
