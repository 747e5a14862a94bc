/** A task or worker status as a coloured pill; the text itself carries the meaning (not colour alone). */
export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`} data-status={status}>{status}</span>;
}

/** success true/false/unknown as a pill. */
export function SuccessBadge({ success }: { success: boolean | null | undefined }) {
  if (success === true) return <span class="badge badge-completed">success</span>;
  if (success === false) return <span class="badge badge-failed">no success</span>;
  return <span class="badge badge-neutral">not scored</span>;
}
