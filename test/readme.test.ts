/** The README documents what the code does: every configuration variable, the two quick-start commands. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configTableMarkdown } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('has the configuration table generated from src/config.ts', () => {
    const block = readme.split('<!-- config-table:start -->')[1]?.split('<!-- config-table:end -->')[0]?.trim();
    expect(block).toBe(configTableMarkdown());
  });

  it('gives the two quick-start commands that package.json defines', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
    expect(pkg.scripts.start).toBeTruthy();
    expect(pkg.scripts.prepare).toContain('build');
    expect(pkg.scripts.test).toBeTruthy();
  });
});
