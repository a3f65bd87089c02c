// A mistake in what the user asked for (bad URL, bad setting, unusable remote): the CLI prints
// the message and exits 2, like commander does for bad flags.
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}
