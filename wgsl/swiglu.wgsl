// SwiGLU (Qwen3 MLP): h = silu(gate) * up, silu(g) = g * sigmoid(g), elementwise over (T, F).
//   forward   h = g*s*u with s = sigmoid(g)
//   backward  dGate = dH*u*s*(1 + g*(1 - s)), dUp = dH*g*s (both overwritten)
// One invocation per element, grid folded: flat = (wid.y*nwg.x + wid.x)*WG + lid.x.

struct Params {
  n: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;        // (T, F)
@group(0) @binding(2) var<storage, read> up: array<f32>;          // (T, F)
@group(0) @binding(3) var<storage, read_write> h: array<f32>;     // (T, F) forward
// backward
@group(0) @binding(3) var<storage, read> dH: array<f32>;          // (T, F)
@group(0) @binding(4) var<storage, read_write> dGate: array<f32>; // (T, F)
@group(0) @binding(5) var<storage, read_write> dUp: array<f32>;   // (T, F)

fn sigmoid(g: f32) -> f32 {
  return 1.0 / (1.0 + exp(-g));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.n) {
    return;
  }
  let g = gate[i];
  h[i] = g * sigmoid(g) * up[i];
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= params.n) {
    return;
  }
  let g = gate[i];
  let s = sigmoid(g);
  let d = dH[i];
  dGate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dUp[i] = d * g * s;
}
