/**
 * The path and query of a request, split by hand instead of parsed as a WHATWG `URL`: the server
 * API answers tens of thousands of requests a second, and a full `URL` per request was ~3 % of
 * its CPU (issue 18) while routes need only the path, and two of them the query. The query is
 * parsed on first use. An absolute-form target (`GET http://host/path`, which HTTP/1.1 servers
 * must accept) still goes through `URL`. Unlike `URL`, dot segments are not resolved:
 * `/admin/../api/publish` matches no route (404), which is the stricter answer.
 *
 * @module
 */

/** RequestUrl is what a route reads of its request's target. */
export class RequestUrl {
  /** The path, without the query: `/api/publish`. */
  readonly pathname: string;
  readonly #query: string;
  #params: URLSearchParams | undefined;

  constructor(target: string) {
    if (!target.startsWith('/')) {
      // Absolute form, or something no route serves: let URL make sense of it (or not).
      let url: URL | undefined;
      try {
        url = new URL(target, 'http://localhost');
      } catch {
        url = undefined;
      }
      this.pathname = url?.pathname ?? '';
      this.#query = url?.search.slice(1) ?? '';
      return;
    }
    const q = target.indexOf('?');
    this.pathname = q === -1 ? target : target.slice(0, q);
    this.#query = q === -1 ? '' : target.slice(q + 1);
  }

  /** searchParams are the query's parameters (parsed once, on first use). */
  get searchParams(): URLSearchParams {
    return (this.#params ??= new URLSearchParams(this.#query));
  }
}
