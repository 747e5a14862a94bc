import { PageHeader } from '../components/PageHeader';

export function NotFoundPage() {
  return (
    <section>
      <PageHeader title="Page not found" />
      <p>There is no dashboard page at this address. <a href="#/">Go to the overview</a>.</p>
    </section>
  );
}
