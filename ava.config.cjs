// Tests are written in TypeScript and compiled by `npm run build:ts` into dist/ before ava runs.
module.exports = {
  files: ['dist/test/**/*.test.js'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
  verbose: true,
};
