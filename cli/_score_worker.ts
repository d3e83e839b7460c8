/** A `star score` worker: scores each batch it receives and posts the result back. */
/// <reference lib="deno.worker" />
import { type Batch, scoreBatch } from "./_score_rows.ts";

self.onmessage = (e: MessageEvent<Batch>) => {
  self.postMessage(scoreBatch(e.data));
};
self.postMessage("ready");
