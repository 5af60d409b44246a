"""A plan's predictable reads, sent while its manifests load, so the server's work and the plan's own overlap.

A plan reads (engine/live) the server's version, every inventory (this source's among them; or read by its
name when they take more than one page), the flows and the deployments of the flows its manifests and its
inventory name, and the block documents those deployments point at (those of the first page while the other
pages come).  Only the flow names come from the manifests, and each manifest says its own on one `flow_name:`
line, which can be read without parsing the file.  So as soon as the files are found, those lines are read
(about 15 ms for 1,000 files, before any thread starts: the reads of the declared flows wait for them), and a
thread sends the plan's reads (the declared flows' deployments at once, the short reads beside them, the flows
only the inventory names once it has answered, the blocks once a page names them) and offers each answer to
the client (prefect/ahead): the live read takes the answer of the very same request instead of sending it,
waiting for it if it is still on its way.
Meanwhile the manifests are parsed and validated, and the rest of the engine is imported.

A guess that turns out wrong (a manifest whose flow name is not a plain one-line value, say) costs at most a
page whose answer nobody takes: the live read sends its own request, and the reader stops.  Only reads go out
early: the plan still writes nothing before every manifest is valid, and an error the reads met is raised where
the live read would have met it, after the manifests' own errors.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import NotFound
from ..manifests import discover, files
from ..prefect import ahead as ahead_mod
from ..prefect.api import PAGE, PrefectClient
from . import reads


class ReadAhead:
    """The reads of one plan, on a thread of their own; `stop()` ends them (and drops what nobody took)."""

    def __init__(self, client: PrefectClient, source: str, manifests: list[Path]) -> None:
        self.client, self.source = client, source
        self.ahead = ahead_mod.Ahead()
        client.ahead = self.ahead
        # guessed here, before the thread starts: on a thread of its own the guess would take turns at the
        # interpreter with the manifests' parsing, and every read of the declared flows waits for it
        self.declared = sorted(_declared_flows(manifests))   # empty: a flow name that is no plain one-line value
        self._thread = threading.Thread(target=self._run, name="reconcile-readahead", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Nothing read ahead is handed out after this: a later plan (apply's, under its lock) reads afresh.
        The thread ends after the request it is sending, if any (not waited for)."""
        self.ahead.finish()
        if self.client.ahead is self.ahead:
            self.client.ahead = None

    # -- the thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._read()
        except Exception:   # noqa: BLE001 - published to whoever takes that read (raised there), or nobody asked
            pass
        finally:
            self.ahead.withdraw_all()

    def _offer(self, held: Any, method: str, path: str, body: Any = None) -> Any:
        if not self.ahead.offer(ahead_mod.key(method, path, body), held):
            raise ahead_mod.Withdrawn()
        return held

    def _read(self) -> None:
        client = self.client
        declared = self.declared
        # offered before anything is sent, so that the live read never sends one of them itself meanwhile
        version = self._offer(ahead_mod.Answer(), "GET", "admin/version")
        inventories = self._offer(ahead_mod.Pages(), "PAGED", "block_documents/filter", reads.INVENTORIES_QUERY)
        body = reads.deployments_query(declared)
        deployments = self._offer(ahead_mod.Pages(), "PAGED", "deployments/filter", body) if declared else None
        offered: list[list[str]] = []     # the ids of each block read offered
        later: list[tuple[ahead_mod.Pages, dict[str, Any]]] = []   # block reads sent after the deployments
        # the declared flows' deployments, the longest read, from this thread at once; the rest beside them
        with ThreadPoolExecutor(3, thread_name_prefix="reconcile-readahead") as beside:
            beside.submit(_send, version, lambda: client.request("GET", "admin/version"))
            rest = beside.submit(self._inventories, inventories, declared)
            if deployments is None:
                return

            def offer_blocks(items: list[dict[str, Any]], page: list[dict[str, Any]]) -> None:
                """Before a page of the deployments is published: after the first, the blocks it points at go
                out at once; after the last, any the others add (reads.block_reads decides, for both sides)."""
                first, last = len(items) == len(page), len(page) < PAGE
                if not (first or last):
                    return
                for ids in reads.block_reads(items[:PAGE], items + rest.result() if last else items):
                    if ids in offered:
                        continue
                    offered.append(ids)
                    query = reads.blocks_query(ids)
                    pages = self._offer(ahead_mod.Pages(), "PAGED", "block_documents/filter", query)
                    if first:   # beside the pages still to come
                        beside.submit(self._stream, pages, "block_documents/filter", query)
                    else:
                        later.append((pages, query))

            self._stream(deployments, "deployments/filter", body, before=offer_blocks)
        for pages, query in later:
            self._stream(pages, "block_documents/filter", query)

    def _inventories(self, inventories: ahead_mod.Pages, declared: list[str]) -> list[dict[str, Any]]:
        """Every inventory, and this source's among them (or read by its name, reads.own_among); then the
        flows, and the deployments of the flows only it names (returned)."""
        held: dict[str, Any] = {}

        def own_next(items: list[dict[str, Any]], page: list[dict[str, Any]]) -> None:
            """Before the last page is published: what the live read asks for next is offered first."""
            if len(page) < PAGE:
                certain, own_raw = reads.own_among(items, self.source)
                if certain:
                    held["next"] = self._next(own_raw, declared)
                else:
                    held["own"] = self._offer(ahead_mod.Answer(), "GET", reads.own_inventory_path(self.source))

        self._stream(inventories, "block_documents/filter", reads.INVENTORIES_QUERY, before=own_next)
        if "own" in held:
            own = held["own"]
            try:
                own_raw: Optional[dict[str, Any]] = self.client.request("GET", reads.own_inventory_path(self.source))
                missing: Optional[NotFound] = None
            except NotFound as exc:
                own_raw, missing = None, exc
            except BaseException as exc:
                own.publish(error=exc)
                raise
            held["next"] = self._next(own_raw, declared)   # offered before the inventory's answer is published
            own.publish(own_raw, missing)
        if held.get("next") is None:
            return []
        flows, names, more, others = held["next"]
        self._stream(flows, "flows/filter", reads.flows_query(names, []))
        return self._stream(more, "deployments/filter", reads.deployments_query(others)) if more is not None else []

    def _next(self, own_raw: Optional[dict[str, Any]], declared: list[str]) -> Optional[tuple]:
        """Offer the reads the live read makes once it knows this source's inventory: the flows, and the
        deployments of the flows only the inventory names.  None without declared flows (nothing to foresee)."""
        if not declared:
            return None
        names = reads.flow_names_for(set(declared), reads.owned_by(own_raw, self.source))
        others = reads.owned_only(declared, names)
        flows = self._offer(ahead_mod.Pages(), "PAGED", "flows/filter", reads.flows_query(names, []))
        more = self._offer(ahead_mod.Pages(), "PAGED", "deployments/filter", reads.deployments_query(others)) \
            if others else None
        return flows, names, more, others

    def _stream(self, pages: ahead_mod.Pages, path: str, body: dict[str, Any],
                before: Optional[Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]] = None
                ) -> list[dict[str, Any]]:
        """Send a paged read, publishing each page as it comes.  `before(items, page)` runs before each page is
        published (it offers what the live read asks for next; if it fails, the live read sends that itself).
        Stops (withdrawn) once nobody will take it; a stream once taken is always ended."""
        items: list[dict[str, Any]] = []
        try:
            for page in self.client.pages(path, body):
                items.extend(page)
                if before is not None:
                    try:
                        before(items, page)
                    except Exception:   # noqa: BLE001 - an error of the inventory's is the live read's to meet; or ended
                        pass
                pages.put(page)
                if len(page) == PAGE and not self.ahead.wanted("PAGED", path, pages):
                    raise ahead_mod.Withdrawn()
        except BaseException as exc:
            pages.end(exc)
            raise
        pages.end()
        return items


def _declared_flows(manifests: list[Path]) -> set[str]:
    """The flow names the manifests' `flow_name:` lines say; empty when one cannot be read that way."""
    names: set[str] = set()
    for path in manifests:
        try:
            name = discover.flow_name_guess(files.read(path))
        except files.Unreadable:
            return set()
        if name is None:
            return set()
        names.add(name)
    return names


def _send(answer: ahead_mod.Answer, request: Callable[[], Any]) -> None:
    try:
        value = request()
    except BaseException as exc:
        answer.publish(error=exc)
        raise
    answer.publish(value)
