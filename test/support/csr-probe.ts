// Kubernetes' own reading of a CSR: a client of scripts/controlplane/csrprobe (built with the control plane),
// which answers, with kube-apiserver's and kube-controller-manager's code, whether a request is accepted at
// create and what identity the certificate issued for it authenticates as.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';

export interface ProbeQuestion {
  /** spec.request: the bytes as the apiserver receives them. */
  readonly request: string | Uint8Array;
  readonly usages: readonly string[];
  readonly expirationSeconds?: number;
}

export type ProbeAnswer =
  | { readonly accepted: true; readonly user: string; readonly groups: readonly string[] }
  | { readonly accepted: false; readonly stage: 'input' | 'create' | 'sign' | 'authenticate'; readonly reason: string };

export interface CsrProbe {
  /** Answers in the order asked; one process serves every call. */
  judge(questions: readonly ProbeQuestion[]): Promise<ProbeAnswer[]>;
  close(): Promise<void>;
}

export async function startCsrProbe(): Promise<CsrProbe> {
  const binDir = await ensureControlPlane();
  const child = spawn(join(binDir, 'csrprobe'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => {
      resolve();
    });
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const failed = (what: string) => new Error(`csrprobe ${what}${stderr === '' ? '' : `: ${stderr.trim()}`}`);
  return {
    async judge(questions) {
      const read = async () => {
        const answers: ProbeAnswer[] = [];
        for (let i = 0; i < questions.length; i++) {
          const line = await lines.next();
          if (line.done === true) throw failed('exited before answering');
          answers.push(JSON.parse(line.value) as ProbeAnswer);
        }
        return answers;
      };
      // Read while writing: a large batch fills both pipes otherwise.
      const [, answers] = await Promise.all([write(child, questions.map(toLine).join('')), read()]);
      return answers;
    },
    async close() {
      child.stdin.end();
      await exited;
      if (child.exitCode !== 0) throw failed(`exited with ${String(child.exitCode ?? child.signalCode)}`);
    },
  };
}

function toLine(question: ProbeQuestion): string {
  const request = typeof question.request === 'string' ? Buffer.from(question.request) : Buffer.from(question.request);
  return `${JSON.stringify({
    request: request.toString('base64'),
    usages: question.usages,
    ...(question.expirationSeconds === undefined ? {} : { expirationSeconds: question.expirationSeconds }),
  })}\n`;
}

function write(child: ChildProcessWithoutNullStreams, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdin.write(text, (error) => {
      if (error) reject(error);
      else resolve();
    });
  });
}
