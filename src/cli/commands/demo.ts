/** `boxer demo`: a seed and a few members on this machine. */
export async function demoCommand(_a: { loopback: boolean }): Promise<void> {
  console.log('demo: coming');
}
