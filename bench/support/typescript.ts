import { readFileSync } from 'node:fs';
import ts from 'typescript';

/**
 * Node arguments that run a TypeScript file as plain JavaScript, its types stripped here by the
 * compiler. Not `--import tsx`: tsx's loader runs on a thread of its own inside the child and raised
 * an idle process's peak RSS from 40 MB to 76 MB on this machine, which would blur a comparison with
 * paycenter, which runs from its compiled dist.
 *
 * `--eval` code resolves bare imports (`fastify`, `pg`) from the working directory: run it in the repo.
 */
export function nodeArgsToRun(file: string): string[] {
  const { outputText, diagnostics } = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2023,
      verbatimModuleSyntax: true,
    },
  });
  if (diagnostics !== undefined && diagnostics.length > 0) {
    const messages = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    throw new Error(`${file} does not transpile:\n${messages.join('\n')}`);
  }
  return ['--input-type=module', '--eval', outputText];
}
