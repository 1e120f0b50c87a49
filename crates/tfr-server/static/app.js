// tfr — progressive enhancement of the server-rendered pages: local times, day headings in
// the viewer's time zone, infinite scroll, the live "new events" banner. Everything works
// without it; nothing here builds HTML from data (fragments come escaped from the server).
'use strict';

(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const absolute = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const dayFormat = new Intl.DateTimeFormat(undefined, {
    weekday: 'long', year: 'numeric', month: 'long', day: 'numeric',
  });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  function ago(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    const units = [[31557600, 'year'], [2629800, 'month'], [604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
    for (const [size, unit] of units) {
      if (Math.abs(seconds) >= size) { return relative.format(Math.round(seconds / size), unit); }
    }
    return relative.format(seconds, 'second');
  }

  function localize(root) {
    for (const time of root.querySelectorAll('time[data-local]')) {
      const date = new Date(time.getAttribute('datetime'));
      if (isNaN(date)) { continue; }
      time.textContent = ago(date) + ' · ' + absolute.format(date);
      time.title = date.toISOString();
    }
  }

  function localDay(date) {
    return date.toLocaleDateString('en-CA', { timeZone: zone });
  }

  // Rebuilds the day headings of the feed in the viewer's time zone.
  function regroup(feed) {
    for (const heading of feed.querySelectorAll('h2.day')) { heading.remove(); }
    let previous = null;
    for (const card of feed.querySelectorAll('article.card')) {
      const time = card.querySelector('time[datetime]');
      if (!time) { continue; }
      const date = new Date(time.getAttribute('datetime'));
      const day = localDay(date);
      if (day !== previous) {
        const heading = document.createElement('h2');
        heading.className = 'day';
        heading.dataset.day = day;
        heading.textContent = dayFormat.format(date);
        card.before(heading);
        previous = day;
      }
    }
  }

  function infiniteScroll(feed) {
    let loading = false;
    const seen = new Set(Array.from(feed.querySelectorAll('article.card'), (c) => c.dataset.id));
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) { loadMore(entry.target); }
      }
    }, { rootMargin: '800px' });

    async function loadMore(link) {
      if (loading || !link.dataset.fragment) { return; }
      loading = true;
      observer.unobserve(link);
      try {
        const response = await fetch(link.dataset.fragment, { headers: { Accept: 'text/html' } });
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        const template = document.createElement('template');
        template.innerHTML = await response.text();
        const fragment = template.content;
        for (const card of fragment.querySelectorAll('article.card')) {
          // Keyset pages never overlap; this guards against a double load.
          if (seen.has(card.dataset.id)) { card.remove(); } else { seen.add(card.dataset.id); }
        }
        link.replaceWith(fragment);
        localize(feed);
        regroup(feed);
        watch();
      } catch (error) {
        link.textContent = 'Could not load more (' + error.message + '). Tap to retry.';
        loading = false;
        observer.observe(link);
        return;
      }
      loading = false;
    }

    function watch() {
      const link = feed.querySelector('a.more[data-fragment]');
      if (link) {
        link.addEventListener('click', (event) => { event.preventDefault(); loadMore(link); });
        observer.observe(link);
      }
    }
    watch();
  }

  function liveBanner(banner) {
    if (!window.EventSource) { return; }
    const query = banner.dataset.stream || '';
    const source = new EventSource('/api/v1/stream?q=' + encodeURIComponent(query));
    let count = 0;
    const button = banner.querySelector('button');
    source.onmessage = () => {
      count += 1;
      button.textContent = count === 1 ? '1 new event — show' : count + ' new events — show';
      banner.hidden = false;
    };
    button.addEventListener('click', () => { window.location.reload(); window.scrollTo(0, 0); });
  }

  function autoSubmit(form) {
    for (const select of form.querySelectorAll('select')) {
      select.addEventListener('change', () => form.submit());
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    localize(document);
    const feed = document.getElementById('feed');
    if (feed) {
      regroup(feed);
      infiniteScroll(feed);
    }
    const banner = document.getElementById('live');
    if (banner) { liveBanner(banner); }
    const form = document.querySelector('form.search');
    if (form) { autoSubmit(form); }
    // Statistics follow the viewer's time zone.
    for (const link of document.querySelectorAll('a[data-keep-tz]')) {
      const url = new URL(link.href, window.location.href);
      if (!url.searchParams.has('tz')) { url.searchParams.set('tz', zone); link.href = url.pathname + url.search; }
    }
    if (document.body.dataset.page === 'stats') {
      const url = new URL(window.location.href);
      if (!url.searchParams.has('tz') && zone !== 'UTC') {
        url.searchParams.set('tz', zone);
        window.location.replace(url.toString());
      }
      if (form && !form.querySelector('input[name="tz"]')) {
        const hidden = document.createElement('input');
        hidden.type = 'hidden'; hidden.name = 'tz'; hidden.value = url.searchParams.get('tz') || zone;
        form.append(hidden);
      }
    }
    // Initialised without error: the browser tests wait for this.
    document.documentElement.dataset.js = 'ready';
  });
}());
