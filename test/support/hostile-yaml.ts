// A YAML file that expands exponentially when its aliases are resolved (a "billion laughs" in miniature).

/** Each level repeats the previous one nine times: 9^4 leaves from a few lines. */
export const ALIAS_BOMB = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'policies: [*d]',
  '',
].join('\n');
