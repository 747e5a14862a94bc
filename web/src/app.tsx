/** The shell: header with navigation and live status, the token prompt, and the routed page. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { onAuthRequired, saveToken } from './api';
import { GLOBAL_STREAM, useLiveState } from './live';
import { href, useRoute, type Route } from './router';
import { OverviewPage } from './pages/OverviewPage';
import { TasksPage } from './pages/TasksPage';
import { TaskDetailPage } from './pages/TaskDetailPage';
import { WorkersPage } from './pages/WorkersPage';
import { SubmitPage } from './pages/SubmitPage';
import { ProblemsPage } from './pages/ProblemsPage';
import { SpendPage } from './pages/SpendPage';
import { ExperimentsPage } from './pages/ExperimentsPage';
import { ExperimentsDetailPage } from './pages/ExperimentsDetailPage';
import { ExperimentsNewPage } from './pages/ExperimentsNewPage';
import { NotFoundPage } from './pages/NotFoundPage';

const NAV: Array<{ path: string; label: string }> = [
  { path: '', label: 'Overview' },
  { path: 'tasks', label: 'Tasks' },
  { path: 'submit', label: 'Submit' },
  { path: 'experiments', label: 'Experiments' },
  { path: 'workers', label: 'Workers' },
  { path: 'problems', label: 'Problems' },
  { path: 'spend', label: 'Models & spend' },
];

function renderPage(route: Route) {
  const [first, second] = route.segments;
  switch (first ?? '') {
    case '': return <OverviewPage />;
    case 'tasks': return second ? <TaskDetailPage id={second} params={route.params} /> : <TasksPage params={route.params} />;
    case 'submit': return <SubmitPage params={route.params} />;
    case 'workers': return <WorkersPage />;
    case 'problems': return <ProblemsPage params={route.params} />;
    case 'spend': return <SpendPage params={route.params} />;
    case 'experiments':
      if (second === 'new') return <ExperimentsNewPage />;
      return second ? <ExperimentsDetailPage key={second} reference={second} params={route.params} /> : <ExperimentsPage params={route.params} />;
    default: return <NotFoundPage />;
  }
}

function LiveIndicator() {
  const state = useLiveState(GLOBAL_STREAM);
  const text = state === 'open' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span class={`live live-${state}`} role="status" title="Updates arrive from the server as they happen">
      <span class="live-dot" aria-hidden="true" />{text}
    </span>
  );
}

function TokenPrompt({ onDone }: { onDone: () => void }) {
  const [token, setToken] = useState('');
  return (
    <form class="notice notice-warning token-prompt" onSubmit={(e) => { e.preventDefault(); if (token.trim()) { saveToken(token.trim()); onDone(); location.reload(); } }}>
      <label for="api-token"><strong>This server requires an API token.</strong> Paste one of its API_TOKEN values:</label>
      <div class="row">
        <input id="api-token" type="password" autoComplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" class="btn btn-primary">Use token</button>
      </div>
    </form>
  );
}

export function App() {
  const route = useRoute();
  const [authNeeded, setAuthNeeded] = useState(false);
  useEffect(() => onAuthRequired(setAuthNeeded), []);
  const section = route.segments[0] ?? '';
  const pageKey = route.segments.join('/');

  // Move focus to the new page's heading, so keyboard and screen-reader users land on it.
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) { firstRender.current = false; return; }
    window.scrollTo(0, 0);
    document.querySelector<HTMLElement>('main h1')?.focus({ preventScroll: true });
  }, [pageKey]);

  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>('main h1')?.focus(); }}>Skip to content</a>
      <header class="topbar">
        <div class="topbar-inner">
          <a class="brand" href="#/">
            <svg width="22" height="22" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7" fill="currentColor" /><path d="M6 20h5l3-9 4 14 3-8h5" fill="none" stroke="var(--bg)" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round" /></svg>
            <span>AIOpsLab Executor</span>
          </a>
          <nav aria-label="Main" class="mainnav">
            <ul>
              {NAV.map((n) => (
                <li key={n.path}>
                  <a href={href(`/${n.path}`)} aria-current={section === n.path ? 'page' : undefined}>{n.label}</a>
                </li>
              ))}
            </ul>
          </nav>
          <LiveIndicator />
        </div>
      </header>
      {/* data-route tells tests (and styles, if ever needed) which page is rendered. */}
      <main id="main" class="container" data-route={pageKey}>
        {authNeeded && <TokenPrompt onDone={() => setAuthNeeded(false)} />}
        {renderPage(route)}
      </main>
      <footer class="container footer muted">
        <a href="/docs">API docs</a> · <a href="/openapi.json">OpenAPI</a> · <a href="/health">Health</a>
      </footer>
    </>
  );
}
