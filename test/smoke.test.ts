import { describe, expect, it } from 'vitest';
import { binding } from '../lib/index';
describe('smoke', () => { it('loads', () => { expect(binding.glibcVersion()).toMatch(/^2\./); }); });
