/**
 * The OpenAI-compatible HTTP API of `star serve` over the serving engine (serve/engine.ts):
 * GET /health, GET /v1/models, POST /v1/completions (serve/completions.ts) and POST
 * /v1/chat/completions (serve/chat.ts). Errors are OpenAI's JSON shape,
 * `{"error": {"message", "type", "param", "code"}}`, with 400 (a bad request), 401 (the API
 * key), 404 (a route or model that does not exist), 405, 413 (a body over the limit) or 500;
 * no request can stop the server.
 * Not done: `best_of`, `logit_bias`, penalties.
 */
import { ApiContext, ApiError, type ApiOptions, created, errorResponse, readJson } from "./api.ts";
import { chat } from "./chat.ts";
import { completions } from "./completions.ts";

export type { ApiOptions } from "./api.ts";

const ROUTES = ["/v1/models", "/v1/completions", "/v1/chat/completions"];

/** The request handler of the API (Deno.serve's handler). */
export function apiHandler(o: ApiOptions): (req: Request) => Promise<Response> {
  const ctx = new ApiContext(o);
  return async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname.replace(/\/+$/, "");
    try {
      if (req.method === "GET" && path === "/health") return new Response(null, { status: 200 });
      if (!path.startsWith("/v1/")) throw new ApiError(404, `No route ${path}`);
      if (o.apiKey !== undefined && req.headers.get("authorization") !== `Bearer ${o.apiKey}`) {
        throw new ApiError(401, "Missing or wrong API key (send Authorization: Bearer KEY)");
      }
      switch (`${req.method} ${path}`) {
        case "GET /v1/models":
          return Response.json({
            object: "list",
            data: [{
              id: o.modelName,
              object: "model",
              created: created(),
              owned_by: "star",
              max_model_len: o.engine.maxLen,
            }],
          });
        case "POST /v1/completions":
          return await completions(ctx, await readJson(req, o.maxBodyBytes), req.signal);
        case "POST /v1/chat/completions":
          return await chat(ctx, await readJson(req, o.maxBodyBytes), req.signal);
      }
      if (ROUTES.includes(path)) {
        throw new ApiError(405, `Method ${req.method} is not allowed on ${path}`);
      }
      throw new ApiError(404, `No route ${path}`);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err.status, err.message, err.param);
      return errorResponse(500, `Internal error: ${(err as Error).message}`);
    }
  };
}
