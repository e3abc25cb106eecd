#!/usr/bin/python3
"""Runs every code cell of a notebook in its kernel and writes it with the outputs.

usage: /usr/bin/python3 scripts/run-notebook.py IN.ipynb OUT.ipynb [--timeout SECONDS]

Like `jupyter nbconvert --to notebook --execute --allow-errors`, with one
difference: each output goes to the cell whose request it answers, whenever it
arrives. Deno's kernel (2.x) can deliver a cell's display_data or
execute_result after the `idle` status that ends the cell; nbclient, and so
nbconvert, stop listening at `idle` and drop it. The kernel runs in the
notebook's folder, as in Jupyter.
"""
import argparse
import os
import queue
import sys
import time

import nbformat
from jupyter_client.manager import KernelManager

# Output messages and how nbformat stores them; status and execute_input are handled apart.
OUTPUT_TYPES = {'stream', 'display_data', 'execute_result', 'error'}


class Runner:
    def __init__(self, client, timeout):
        self.client = client
        self.timeout = timeout
        self.cells = {}  # request msg_id -> cell (None for the closing request)
        self.idle = set()
        self.replied = set()

    def route(self, msg):
        parent = msg['parent_header'].get('msg_id')
        if parent not in self.cells:
            return
        cell = self.cells[parent]
        kind = msg['msg_type']
        if kind == 'status':
            if msg['content']['execution_state'] == 'idle':
                self.idle.add(parent)
        elif cell is None:
            pass
        elif kind == 'execute_input':
            cell.execution_count = msg['content'].get('execution_count')
        elif kind == 'clear_output':
            cell.outputs = []
        elif kind in OUTPUT_TYPES:
            cell.outputs.append(nbformat.v4.output_from_msg(msg))

    def pump(self, until):
        """Routes messages until until() holds; raises after the timeout."""
        deadline = time.monotonic() + self.timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f'no answer within {self.timeout} s')
            self.poll(0.05)

    def poll(self, wait):
        """Routes what has arrived; True if anything did."""
        got = False
        for read in (self.client.get_iopub_msg, self.client.get_shell_msg):
            try:
                msg = read(timeout=wait)
            except queue.Empty:
                continue
            got = True
            if read == self.client.get_shell_msg:
                parent = msg['parent_header'].get('msg_id')
                self.replied.add(parent)
                cell = self.cells.get(parent)
                if cell is not None and cell.execution_count is None:
                    cell.execution_count = msg['content'].get('execution_count')
            else:
                self.route(msg)
        return got

    def execute(self, cell, code, silent=False):
        msg_id = self.client.execute(code, silent=silent, store_history=not silent, allow_stdin=False)
        self.cells[msg_id] = cell
        self.pump(lambda: msg_id in self.idle and msg_id in self.replied)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('notebook')
    parser.add_argument('output')
    parser.add_argument('--timeout', type=float, default=240, help='seconds a cell (or the kernel start) may take')
    args = parser.parse_args()

    nb = nbformat.read(args.notebook, as_version=4)
    manager = KernelManager(kernel_name=nb.metadata.get('kernelspec', {}).get('name', 'python3'))
    manager.start_kernel(cwd=os.path.dirname(os.path.abspath(args.notebook)))
    client = manager.client()
    client.start_channels()
    runner = Runner(client, args.timeout)
    try:
        client.wait_for_ready(timeout=args.timeout)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != 'code':
                continue
            cell.outputs = []
            cell.execution_count = None
            try:
                runner.execute(cell, cell.source)
            except TimeoutError as error:
                sys.exit(f'cell {index} ({cell.get("id", "?")}): {error}')
        # A closing request that shows nothing, then a quiet second: the last
        # cell's late outputs were sent before it and arrive meanwhile.
        runner.execute(None, '', silent=True)
        quiet_until = time.monotonic() + 1
        while time.monotonic() < quiet_until:
            if runner.poll(0.1):
                quiet_until = time.monotonic() + 1
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)

    nbformat.validate(nb)
    nbformat.write(nb, args.output)


if __name__ == '__main__':
    main()
