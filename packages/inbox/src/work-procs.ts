// A command's process group: signalling it, and finding what the command left running, through
// /proc (Linux; elsewhere nothing is found).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Live processes (not zombies, not this one) in the process group or session that `leader` led,
 * or whose environment holds `marker` (`NAME=value`, exactly): a daemon that made a session of
 * its own still carries the environment it was started with. Empty without /proc.
 */
export function processesLeft(leader: number, marker: string): { pid: number; inGroup: boolean }[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const needle = Buffer.from(`\0${marker}\0`);
  const found: { pid: number; inGroup: boolean }[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') continue;
    if (Number(fields[2]) === leader || Number(fields[3]) === leader) {
      found.push({ pid, inGroup: Number(fields[2]) === leader });
      continue;
    }
    try {
      const env = fs.readFileSync(`/proc/${name}/environ`);
      if (Buffer.concat([Buffer.from([0]), env, Buffer.from([0])]).includes(needle)) found.push({ pid, inGroup: false });
    } catch {
      // another user's process, or gone
    }
  }
  return found;
}

/** Whether the process group `pgid` has any member left (a zombie not yet reaped counts). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
