/** A CLI failure with a one-line message and an exit code (1 = API error, 2 = usage, 3 = cannot connect). */
export class CliError extends Error {
  readonly exitCode: number;
  /** For API errors: the platform's error code (`NotFound`, `InvalidState`, …) and the HTTP status. */
  readonly apiCode: string | undefined;
  readonly httpStatus: number | undefined;
  constructor(message: string, exitCode = 1, api: { code?: string; status?: number } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.apiCode = api.code;
    this.httpStatus = api.status;
  }
}

/** The API answered 404 (the resource does not exist, or is not visible to the caller). */
export const isNotFound = (e: unknown): boolean => e instanceof CliError && e.httpStatus === 404;
