// Command lines for display. Pure.

/** A command line as a POSIX shell reads it (quoted only where needed). */
export function formatCommand(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}
