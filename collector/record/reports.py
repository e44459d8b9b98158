"""SQL the monthly reports read besides rollups and bandwidth tests: state changes (reach,
agent online/offline) and per-hour sequence spans. Both are kept as long as the rollups, so a
month's report stands after its raw rows are pruned."""
from __future__ import annotations

from .types import LatencyMonth, SeqHour, StateChange

#: How far before a period to look for the state a line or agent was in when it began.
LOOKBACK_S = 62 * 86400


class ReportRecord:
    def state_changes(self, start: float, end: float, site: str | None = None) -> list[StateChange]:
        """Changes in [start - LOOKBACK_S, end), oldest first (the last one before ``start``
        says the state the period began in)."""
        sql = ("SELECT pos, subject, site, line, agent_id, at, state, code FROM state_changes "
               "WHERE at >= ? AND at < ?")
        params: list = [start - LOOKBACK_S, end]
        if site is not None:
            sql += " AND site = ?"
            params.append(site)
        return [StateChange(int(p), su, si, ln, a, float(at), st, c)
                for p, su, si, ln, a, at, st, c in self._q(sql + " ORDER BY at, pos", params)]  # type: ignore

    def seq_hours(self, start: float, end: float, site: str | None = None) -> list[SeqHour]:
        """Per agent stream and UTC hour in [start, end): messages and their sequence span."""
        sql = "SELECT agent_id, stream, hour, site, n, seq_min, seq_max FROM seq_hours WHERE hour >= ? AND hour < ?"
        params: list = [int(start // 3600 * 3600), end]
        if site is not None:
            sql += " AND site = ?"
            params.append(site)
        return [SeqHour(a, s, int(h), si, int(n), int(lo), int(hi))
                for a, s, h, si, n, lo, hi in self._q(sql + " ORDER BY agent_id, stream, hour", params)]  # type: ignore

    def rollup_counts(self, start: float, end: float, site: str | None = None) -> dict[tuple[str, str, str], tuple[int, int, int]]:
        """{(site, line, kind): (measurements, of them ok, distinct agent/target/method)} for the
        hours in [start, end), without reading the stats (cheap for a whole province)."""
        sql = ("SELECT site, line, kind, sum(n), sum(n_ok), count(DISTINCT agent_id || '|' || target || '|' || method) "
               "FROM rollups WHERE hour >= ? AND hour < ?")
        params: list = [int(start), end]
        if site is not None:
            sql += " AND site = ?"
            params.append(site)
        return {(s, ln, k): (int(n), int(nok), int(t)) for s, ln, k, n, nok, t in
                self._q(sql + " GROUP BY site, line, kind", params)}  # type: ignore[attr-defined]

    def saved_state(self, key: str) -> dict | None:
        """A rule_state entry, read without a write transaction (e.g. "report:2026-10": done)."""
        import json

        rows = self._q("SELECT state FROM rule_state WHERE key = ?", (key,))  # type: ignore[attr-defined]
        return json.loads(rows[0][0]) if rows else None

    # -- per line, summed in the database (the stats JSON is not shipped row by row) -------------
    def _j(self, field: str, idx: int | None = None) -> str:
        """SQL for a number (or, idx None, the JSON text) inside a rollup's stats."""
        if self.backend == "sqlite":  # type: ignore[attr-defined]
            return f"json_extract(stats, '$.{field}[{idx}]')" if idx is not None else \
                f"json_extract(stats, '$.{field}')"
        return f"(j #>> '{{{field},{idx}}}')::float8" if idx is not None else f"(j #>> '{{{field}}}')"

    def _from(self, kind: str, site: str | None) -> tuple[str, list]:
        cols = "site, line, agent_id, target, method, n, n_ok, stats" + ("" if self.backend == "sqlite"  # type: ignore
                                                                          else ", stats::jsonb AS j")
        where, params = "kind = ? AND hour >= ? AND hour < ?", [kind]
        if site is not None:
            where += " AND site = ?"
        # OFFSET 0: PostgreSQL must not inline the subquery, or it parses stats once per reference
        return f"(SELECT {cols}, hour FROM rollups WHERE {where}{'' if self.backend == 'sqlite' else ' OFFSET 0'}) r", \
            params  # type: ignore[attr-defined]

    def latency_month(self, start: float, end: float, site: str | None = None
                      ) -> dict[tuple[str, str], LatencyMonth]:
        """{(site, line): LatencyMonth} for the hours in [start, end)."""
        import json

        from . import rollup as rm

        src, params = self._from("latency", site)
        params += [int(start), end] + ([site] if site is not None else [])
        rows = self._q(f"SELECT site, line, sum(n), sum(n_ok), count(DISTINCT agent_id || '|' || target || '|' || "  # type: ignore
                       f"method), sum({self._j('rtt_avg_ms', 0)}), sum({self._j('rtt_avg_ms', 1)}), "
                       f"sum({self._j('sent', 1)}), sum({self._j('received', 1)}) FROM {src} GROUP BY site, line",
                       params)
        medians: dict[tuple[str, str], dict] = {}
        for s, ln, med in self._q(f"SELECT site, line, {self._j('rtt_median_ms')} FROM {src}", params):  # type: ignore
            if med:
                rm.merge_stats(medians.setdefault((s, ln), {}), {"m": json.loads(med)})
        return {(s, ln): LatencyMonth(int(n), int(nok), int(t), int(an or 0), float(asum or 0), float(sent or 0),
                                      float(recv or 0), medians.get((s, ln), {}).get("m"))
                for s, ln, n, nok, t, an, asum, sent, recv in rows}

    def reach_coverage(self, start: float, end: float, site: str | None = None
                       ) -> dict[tuple[str, str], dict[int, float]]:
        """{(site, line): {UTC hour: seconds its state was observed (reach coverage, all targets)}}."""
        from .rollup import COVERED

        src, params = self._from("reach", site)
        params += [int(start), end] + ([site] if site is not None else [])
        out: dict[tuple[str, str], dict[int, float]] = {}
        for s, ln, h, cov in self._q(f"SELECT site, line, hour, sum({self._j(COVERED, 1)}) FROM {src} "  # type: ignore
                                     f"GROUP BY site, line, hour", params):
            out.setdefault((s, ln), {})[int(h)] = float(cov or 0)
        return out

    # -- bulk load (benchmarks, imports from another record) ----------------------------------
    def import_rollups(self, rollups: list, tests: list | None = None, changes: list | None = None,
                       seq: list | None = None) -> None:
        """Insert ready-made rollups (types.Rollup), bandwidth tests (types.BandwidthTest), state
        changes and sequence spans in one transaction, replacing rows with the same keys. For
        benchmarks and imports; the collector itself only folds its feed (Record.rollup)."""
        from .batch import dumps

        with self.batch():  # type: ignore[attr-defined]
            db = self._b  # type: ignore[attr-defined]
            db.executemany(
                "INSERT INTO rollups VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (site, line, kind, hour, agent_id, "
                "target, method) DO UPDATE SET n = excluded.n, n_ok = excluded.n_ok, stats = excluded.stats",
                [(r.key.site, r.key.line, r.key.kind, r.key.agent_id, r.key.target, r.key.method, r.key.hour, r.n,
                  r.n_ok, dumps(r.stats)) for r in rollups])
            if tests:
                db.executemany("INSERT INTO bandwidth_tests VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (pos) DO NOTHING",
                               [(t.pos, t.site, t.line, t.agent_id, t.at, t.method, t.target, int(t.ok), t.error_code,
                                 t.download_mbps, t.upload_mbps) for t in tests])
            if changes:
                db.executemany("INSERT INTO state_changes VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (pos) DO NOTHING",
                               [(c.pos, c.subject, c.site, c.line, c.agent_id, c.at, c.state, c.code)
                                for c in changes])
            if seq:
                db.executemany("INSERT INTO seq_hours VALUES (?,?,?,?,?,?,?) ON CONFLICT (agent_id, stream, hour) DO "
                               "UPDATE SET n = excluded.n, seq_min = excluded.seq_min, seq_max = excluded.seq_max",
                               [(h.agent_id, h.stream, h.hour, h.site, h.n, h.seq_min, h.seq_max) for h in seq])
