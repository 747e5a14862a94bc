/** Previous/next paging with "page x of y"; buttons, so keyboard and screen readers get them for free. */
export function Pagination({ page, pageSize, total, onPage }: { page: number; pageSize: number; total: number; onPage: (p: number) => void }) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const first = total === 0 ? 0 : (page - 1) * pageSize + 1;
  const last = Math.min(total, page * pageSize);
  return (
    <nav class="pagination" aria-label="Pages">
      <button type="button" class="btn" disabled={page <= 1} onClick={() => onPage(page - 1)}>← Previous</button>
      <span aria-live="polite">{total === 0 ? 'No results' : `${first}–${last} of ${total} · page ${page} of ${pages}`}</span>
      <button type="button" class="btn" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next →</button>
    </nav>
  );
}
