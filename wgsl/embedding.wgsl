// Embedding gather and its gradient over a table stored in row shards (each shard one binding
// of at most maxStorageBufferBindingSize; one dispatch per shard, rows [shardStart,
// shardStart + shardRows)).
//   forward         out[t, d] = table[ids[t], d] for the tokens whose id is in the shard; the
//                   table is f32, or f16/bf16 packed two per u32 (TABLE_DTYPE 0/1/2).
//   backward_links  per token: the next token with the same id (or NONE) and a HEAD bit on the
//                   first occurrence; O(T^2) id loads, once per step, shard-independent.
//   backward        dTable[id, d] += sum over the tokens with that id, in token order, done by
//                   the head token only: deterministic and atomic-free.
// One invocation per (token, column), grid folded: flat = (wid.y*nwg.x + wid.x)*WG + lid.x.

struct Params {
  tokens: u32,
  dim: u32,
  shardStart: u32,
  shardRows: u32,
}

override WG: u32 = 256u;
override TABLE_DTYPE: u32 = 0u;

const HEAD: u32 = 0x80000000u;
const NONE: u32 = 0x7fffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;          // (T)
@group(0) @binding(2) var<storage, read> table: array<u32>;        // (shardRows, D) TABLE_DTYPE
@group(0) @binding(3) var<storage, read_write> out: array<f32>;    // (T, D)
// backward_links / backward
@group(0) @binding(2) var<storage, read_write> links: array<u32>;  // (T) next | HEAD
@group(0) @binding(3) var<storage, read> dOut: array<f32>;         // (T, D)
@group(0) @binding(4) var<storage, read_write> dTable: array<f32>; // (shardRows, D)

fn loadTable(e: u32) -> f32 {
  if (TABLE_DTYPE == 0u) {
    return bitcast<f32>(table[e]);
  }
  let word = table[e >> 1u];
  if (TABLE_DTYPE == 1u) {
    return unpack2x16float(word)[e & 1u];
  }
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1u) == 1u));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_id) lid: vec3u) {
  let flat = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let dim = params.dim;
  if (flat >= params.tokens * dim) {
    return;
  }
  let t = flat / dim;
  let d = flat - t * dim;
  let row = ids[t] - params.shardStart; // wraps to a huge value below the shard
  if (row < params.shardRows) {
    out[flat] = loadTable(row * dim + d);
  }
}

@compute @workgroup_size(WG)
fn backward_links(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  let t = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (t >= params.tokens) {
    return;
  }
  let id = ids[t];
  var flag = HEAD;
  for (var j = 0u; j < t; j++) {
    if (ids[j] == id) {
      flag = 0u;
      break;
    }
  }
  var next = NONE;
  for (var j = t + 1u; j < params.tokens; j++) {
    if (ids[j] == id) {
      next = j;
      break;
    }
  }
  links[t] = next | flag;
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  let flat = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let dim = params.dim;
  if (flat >= params.tokens * dim) {
    return;
  }
  let t = flat / dim;
  let d = flat - t * dim;
  let link = links[t];
  let row = ids[t] - params.shardStart;
  if ((link & HEAD) == 0u || row >= params.shardRows) {
    return;
  }
  var sum = dOut[flat];
  var j = link & NONE;
  while (j != NONE) {
    sum += dOut[j * dim + d];
    j = links[j] & NONE;
  }
  dTable[row * dim + d] += sum;
}
