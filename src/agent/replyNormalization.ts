/**
 * Optional repair of model replies before AIOpsLab parses them (`agent_config.normalize_reply`,
 * off by default). AIOpsLab's parser rejects a language tag on the code fence (```bash), a common
 * model habit; stripping it changes what the benchmark measures, so it is opt-in and every change
 * is recorded on the message.
 */

export interface NormalizedReply {
  text: string;
  changed: boolean;
  changes: string[];
}

/** Every run of three backticks; the 1st, 3rd, … open a block, the others close one. */
const FENCE = /```/g;
/** A language tag right after an opening fence, up to the end of that line. */
const TAG = /^[ \t]*([A-Za-z][A-Za-z0-9_+#.-]*)[ \t]*(?=\r?\n)/;

export function normalizeReply(text: string): NormalizedReply {
  const changes: string[] = [];
  let out = '';
  let last = 0;
  let opening = true;
  for (const m of text.matchAll(FENCE)) {
    const end = m.index + 3;
    out += text.slice(last, end);
    last = end;
    if (opening) {
      const tag = TAG.exec(text.slice(end));
      if (tag) {
        changes.push(`removed language tag "${tag[1]}" from a code fence`);
        last = end + tag[0].length;
      }
    }
    opening = !opening;
  }
  out += text.slice(last);
  return { text: out, changed: changes.length > 0, changes };
}
