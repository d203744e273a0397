/** A CLI failure with a one-line message and an exit code (1 = API error, 2 = usage, 3 = cannot connect). */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
