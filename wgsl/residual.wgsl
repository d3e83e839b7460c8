// Residual add over any shape, as flat arrays:
//   forward   out = a + b
//   backward  dst += src: the gradient of a residual branch is added into the residual
//             stream's gradient (also serves as the in-place add x += f(x)).
// One invocation per element, grid folded: flat = (wid.y*nwg.x + wid.x)*WG + lid.x.

struct Params {
  n: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // (n)
@group(0) @binding(2) var<storage, read> b: array<f32>;          // (n)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // (n)
// backward
@group(0) @binding(1) var<storage, read> src: array<f32>;        // (n)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;  // (n)

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i < params.n) {
    out[i] = a[i] + b[i];
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i < params.n) {
    dst[i] += src[i];
  }
}
