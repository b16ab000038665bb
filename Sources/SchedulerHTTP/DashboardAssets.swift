/// The dashboard's page, script and style: served by the scheduler itself, nothing from elsewhere.
enum DashboardAssets {
    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>swlaunch cluster</title>
        <link rel="stylesheet" href="/dashboard.css">
        </head>
        <body data-state="connecting">
        <header>
          <h1>swlaunch</h1>
          <span id="summary">connecting…</span>
          <span id="connection" class="badge">connecting</span>
        </header>
        <main>
          <section id="hosts-section">
            <h2>Hosts</h2>
            <table id="hosts"><thead><tr><th>Host</th><th>Platform</th><th>Slots</th><th>Load</th><th>Speed</th><th>Done</th></tr></thead><tbody></tbody></table>
          </section>
          <section id="timeline-section">
            <h2>Jobs per host, last <span id="window">60</span> s</h2>
            <div id="timeline"></div>
          </section>
          <section class="row">
            <div>
              <h2>Running</h2>
              <ul id="running"></ul>
            </div>
            <div>
              <h2>Throughput</h2>
              <canvas id="throughput" width="360" height="90"></canvas>
              <p id="throughput-text"></p>
            </div>
            <div>
              <h2>Where the time goes</h2>
              <div id="breakdown"></div>
              <p id="bytes"></p>
            </div>
            <div>
              <h2>Local fallbacks</h2>
              <ul id="fallbacks"></ul>
            </div>
          </section>
          <pre id="errors" hidden></pre>
        </main>
        <script src="/dashboard.js"></script>
        </body>
        </html>
        """

    static let style = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2430; }
        header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1em; background: #1d2430; color: #fff; }
        header h1 { font-size: 1.2em; margin: 0; }
        .badge { margin-left: auto; padding: 0 .6em; border-radius: 1em; background: #8a6d00; }
        .badge.live { background: #23824a; }
        main { padding: .5em 1em; }
        h2 { font-size: 1em; margin: .8em 0 .3em; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ea; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .row { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 1em; }
        .row > div { background: #fff; padding: .3em .8em .6em; }
        ul { list-style: none; padding: 0; margin: 0; max-height: 14em; overflow: auto; }
        li { padding: .1em 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
        #timeline { background: #fff; }
        .lane { display: flex; align-items: center; border-bottom: 1px solid #eef0f3; min-height: 1.6em; padding: 2px 0; }
        .lane .name { width: 9em; padding-left: .5em; overflow: hidden; text-overflow: ellipsis; }
        .lane .track { position: relative; flex: 1; }
        .job { position: absolute; height: 8px; border-radius: 2px; background: #2f6fd1; opacity: .85; }
        .job.running { background: #e39a1c; }
        .job.failed, .job.refused, .job.lost { background: #c8372d; }
        .job.unused, .job.moved { background: #b8bec8; }
        .bar { display: flex; height: 1.2em; margin: .3em 0; }
        .bar span { display: block; height: 100%; }
        .legend span { display: inline-block; margin-right: .8em; }
        .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .25em; vertical-align: middle; }
        #errors { color: #c8372d; }
        canvas { display: block; width: 100%; height: 90px; }
        """

    static let script = """
        'use strict';
        const windowSeconds = 60;
        const colors = { queue: '#9aa5b1', preprocess: '#7b61c9', transfer: '#e39a1c', compile: '#2f6fd1' };
        const state = { hosts: [], running: new Map(), finished: [], fallbacks: [], totals: { queue: 0, preprocess: 0, transfer: 0, compile: 0 },
                        bytesOut: 0, bytesIn: 0, remote: 0, jobs: 0, skew: 0 };
        window.addEventListener('error', (e) => { const p = document.getElementById('errors'); p.hidden = false; p.textContent += e.message + '\\n'; });

        function text(tag, value, cls) { const e = document.createElement(tag); e.textContent = value; if (cls) e.className = cls; return e; }
        function seconds(us) { return (us / 1e6).toFixed(us < 1e7 ? 2 : 1) + ' s'; }
        function now() { return Date.now() / 1000 + state.skew; }

        function apply(event) {
            state.skew = event.time - Date.now() / 1000;
            if (event.hosts && (event.kind === 'snapshot' || event.kind === 'hosts')) state.hosts = event.hosts;
            if (event.kind === 'snapshot') {
                // A (re)connection: the snapshot carries the recent jobs again.
                Object.assign(state, { running: new Map(), finished: [], fallbacks: [], bytesOut: 0, bytesIn: 0, remote: 0, jobs: 0,
                                       totals: { queue: 0, preprocess: 0, transfer: 0, compile: 0 } });
            }
            if (event.kind === 'host_joined' && event.hosts) {
                for (const h of event.hosts) { state.hosts = state.hosts.filter((x) => x.name !== h.name).concat([h]); }
            }
            if (event.kind === 'host_left' && event.hosts) {
                const gone = new Set(event.hosts.map((h) => h.name));
                state.hosts = state.hosts.filter((h) => !gone.has(h.name));
            }
            for (const job of (event.kind.startsWith('job_') || event.kind === 'snapshot' ? event.jobs || [] : [])) {
                if (job.outcome === 'running') { state.running.set(job.key, job); continue; }
                state.running.delete(job.key);
                state.jobs += 1;
                state.finished.push(job);
                if (state.finished.length > 2000) state.finished.shift();
                state.bytesOut += job.bytes_out; state.bytesIn += job.bytes_in;
                if (job.outcome === 'remote') {
                    state.remote += 1;
                    state.totals.queue += job.queue_us; state.totals.preprocess += job.preprocess_us;
                    state.totals.transfer += job.transfer_us; state.totals.compile += job.compile_us;
                }
                if (job.outcome === 'local') { state.fallbacks.unshift(job); state.fallbacks.length = Math.min(state.fallbacks.length, 50); }
            }
        }

        function renderHosts() {
            const body = document.querySelector('#hosts tbody');
            body.replaceChildren();
            for (const h of [...state.hosts].sort((a, b) => a.name.localeCompare(b.name))) {
                const tr = document.createElement('tr');
                tr.dataset.host = h.name;
                tr.append(text('td', h.name), text('td', h.platform),
                          text('td', h.accepts_remote ? h.running + '/' + h.max_jobs : 'client only', 'num'),
                          text('td', h.load.toFixed(2), 'num'), text('td', h.speed == null ? '–' : h.speed.toFixed(2), 'num'),
                          text('td', String(h.jobs_done), 'num'));
                body.append(tr);
            }
            const slots = state.hosts.filter((h) => h.accepts_remote).reduce((n, h) => n + h.max_jobs, 0);
            document.getElementById('summary').textContent = state.hosts.length + ' hosts, ' + state.running.size + ' running on ' + slots +
                ' slots, ' + state.jobs + ' jobs seen (' + state.remote + ' remote)';
        }

        function base(path) { return path.slice(path.lastIndexOf('/') + 1) || '?'; }

        // One lane per host; its jobs packed into rows so that jobs at the same time never cover each other.
        function renderTimeline() {
            const t = now(), start = t - windowSeconds;
            const lanes = new Map();
            for (const h of state.hosts) if (h.accepts_remote) lanes.set(h.name, []);
            const add = (j) => { if (!lanes.has(j.host)) lanes.set(j.host, []); lanes.get(j.host).push(j); };
            for (const j of state.finished) if (j.host && j.finished >= start) add(j);
            for (const j of state.running.values()) if (j.host) add(j);
            const box = document.getElementById('timeline');
            box.replaceChildren();
            for (const [name, jobs] of [...lanes.entries()].sort()) {
                const rows = [];
                const spans = jobs.map((j) => ({ j, from: Math.max(start, j.started || j.granted), to: j.outcome === 'running' ? t : j.finished }))
                    .sort((a, b) => a.from - b.from);
                for (const s of spans) {
                    let row = rows.findIndex((end) => end <= s.from);
                    if (row < 0) { row = rows.length; rows.push(0); }
                    rows[row] = s.to;
                    s.row = row;
                }
                const lane = document.createElement('div'); lane.className = 'lane';
                const track = document.createElement('div'); track.className = 'track';
                const height = Math.max(1, rows.length);
                track.style.height = (height * 9 + 2) + 'px';
                for (const s of spans) {
                    const bar = document.createElement('div');
                    bar.className = 'job ' + s.j.outcome;
                    bar.style.left = (100 * (s.from - start) / windowSeconds) + '%';
                    bar.style.width = Math.max(0.3, 100 * (s.to - s.from) / windowSeconds) + '%';
                    bar.style.top = (s.row * 9 + 1) + 'px';
                    bar.title = base(s.j.source) + ' from ' + s.j.client + ' (' + s.j.outcome + ')';
                    track.append(bar);
                }
                lane.append(text('div', name, 'name'), track);
                box.append(lane);
            }
        }

        function renderLists() {
            const running = document.getElementById('running');
            running.replaceChildren();
            for (const j of state.running.values()) {
                const li = text('li', base(j.source) + ' — ' + j.client + ' → ' + j.host + ', ' + (now() - j.granted).toFixed(1) + ' s');
                li.className = 'running-job';
                li.title = j.source;
                running.append(li);
            }
            if (!state.running.size) running.append(text('li', 'none'));
            const fallbacks = document.getElementById('fallbacks');
            fallbacks.replaceChildren();
            for (const j of state.fallbacks) {
                const li = text('li', j.client + ': ' + base(j.source) + ' — ' + j.reason);
                li.title = j.source;
                fallbacks.append(li);
            }
            if (!state.fallbacks.length) fallbacks.append(text('li', 'none'));
        }

        function renderThroughput() {
            const canvas = document.getElementById('throughput'), ctx = canvas.getContext('2d');
            const t = now(), buckets = new Array(30).fill(0);
            for (const j of state.finished) { const age = t - j.finished; if (age >= 0 && age < 60) buckets[29 - Math.floor(age / 2)] += 1; }
            const top = Math.max(1, ...buckets);
            ctx.clearRect(0, 0, canvas.width, canvas.height);
            const w = canvas.width / buckets.length;
            ctx.fillStyle = '#2f6fd1';
            buckets.forEach((n, i) => { const h = (canvas.height - 4) * n / top; ctx.fillRect(i * w + 1, canvas.height - h, w - 2, h); });
            const lastMinute = buckets.reduce((a, b) => a + b, 0);
            document.getElementById('throughput-text').textContent = lastMinute + ' jobs in the last minute (2 s columns)';
        }

        function renderBreakdown() {
            const total = Object.values(state.totals).reduce((a, b) => a + b, 0);
            const box = document.getElementById('breakdown');
            box.replaceChildren();
            const bar = document.createElement('div'); bar.className = 'bar';
            const legend = document.createElement('div'); legend.className = 'legend';
            for (const [part, us] of Object.entries(state.totals)) {
                const s = document.createElement('span');
                s.style.width = (total ? 100 * us / total : 0) + '%'; s.style.background = colors[part];
                bar.append(s);
                const l = document.createElement('span');
                const swatch = document.createElement('i'); swatch.style.background = colors[part];
                l.append(swatch, part + ' ' + seconds(us));
                legend.append(l);
            }
            box.append(bar, legend);
            document.getElementById('bytes').textContent = 'sent ' + (state.bytesOut / 1e6).toFixed(1) + ' MB, received ' +
                (state.bytesIn / 1e6).toFixed(1) + ' MB over ' + state.remote + ' remote jobs';
        }

        function render() { renderHosts(); renderTimeline(); renderLists(); renderThroughput(); renderBreakdown(); }

        const source = new EventSource('/api/events');
        source.onopen = () => { const b = document.getElementById('connection'); b.textContent = 'live'; b.className = 'badge live'; };
        source.onerror = () => { const b = document.getElementById('connection'); b.textContent = 'reconnecting'; b.className = 'badge'; };
        source.onmessage = (message) => {
            const event = JSON.parse(message.data);
            apply(event);
            if (event.kind === 'snapshot') document.body.dataset.state = 'live';
        };
        setInterval(render, 500);
        render();
        """
}
