/** A page's h1 (focus target after navigation) with optional actions on the right. */
import type { ComponentChildren } from 'preact';
import { useDocumentTitle } from '../hooks';

export function PageHeader({ title, subtitle, children }: { title: string; subtitle?: ComponentChildren; children?: ComponentChildren }) {
  useDocumentTitle(title);
  return (
    <div class="page-header">
      <div>
        <h1 tabIndex={-1}>{title}</h1>
        {subtitle && <p class="muted subtitle">{subtitle}</p>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}
