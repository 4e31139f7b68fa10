/** `boxer lambda package`: builds the function's zip (src/lambda/package.ts) and prints its size and contents. */
import { buildPackage, formatReport, type LambdaArch } from '../../lambda/package';

export interface LambdaPackageArgs {
  out: string;
  include: string[];
  arch: LambdaArch;
  withAwsSdk: boolean;
}

export async function lambdaPackageCommand(a: LambdaPackageArgs): Promise<void> {
  const report = await buildPackage({ out: a.out, include: a.include, arch: a.arch, withAwsSdk: a.withAwsSdk });
  process.stdout.write(formatReport(report) + '\n');
}
