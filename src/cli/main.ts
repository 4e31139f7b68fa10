export function main(_argv: string[]): void {
  console.error('boxer: not built yet');
  process.exitCode = 70;
}
