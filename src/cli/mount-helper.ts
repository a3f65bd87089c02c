// `mount.fusestream` (also installed as `mount.fuse.fusestream`): the helper mount(8) runs
// for `mount -t fuse.fusestream REMOTE MNT -o …` and for an /etc/fstab line
//   REMOTE  MNT  fuse.fusestream  defaults,_netdev,allow_other,cache_max_size=20G  0 0
// mount(8) calls it as `mount.fuse.fusestream REMOTE MNT [-sfnv] [-N NS] -o OPTIONS
// [-t TYPE]` and waits for its exit status, so it runs `fusestream mount REMOTE MNT … --daemon`:
// it returns once the mount is ready, non-zero with the reason when it is not.
//
// Options map onto the mount's flags through the settings table (base/settings.ts), so every
// setting has its mount option: `cache_max_size=20G` → `--cache-max-size 20G`, `allow_other`
// → `--allow-other` (a boolean may say `=false`), plus `ro` → `--read-only`,
// `log_file=F` → `--log-file F` and `username=NAME` → `--user NAME` (mount(8) has `user=`).
// The generic options mount(8) and fstab pass (defaults,
// _netdev, rw, noauto, user, nofail, x-systemd.*, …; MOUNT_GENERIC below) are accepted and
// ignored. An unknown option is an error (exit 2) unless -s (sloppy) is given; -f (fake) does
// nothing and succeeds; -N (another mount namespace) is refused.
import { parseBoolean, settingSpecs, SettingError } from '../base/settings.js';
import { main } from './main.js';
import { UsageError } from './usage-error.js';

/** Options of mount(8) and fstab that mean nothing to fusestream, accepted and ignored. */
const MOUNT_GENERIC = new Set([
  'defaults', '_netdev', 'rw', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', 'nofail',
  'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'async', 'sync', 'dirsync', 'atime', 'noatime',
  'diratime', 'nodiratime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'lazytime',
  'nolazytime', 'silent', 'loud', 'symfollow', 'nosymfollow', 'mand', 'nomand', 'iversion', 'noiversion',
]);
/** Generic options with a value, or families of them (x-systemd.automount, comment=…, user=NAME). */
const MOUNT_GENERIC_PREFIXES = ['x-', 'comment=', 'user=', 'helper=', 'fsname=', 'subtype='];
/**
 * Settings whose option name is taken by a generic one: mount(8) passes `user=NAME` for a user
 * mount, so the WebDAV user is `username=NAME` (as cifs names it).
 */
const RENAMED: ReadonlyMap<string, string> = new Map([['user', 'username']]);

/** The mount option of the setting `key` (`cache-max-size` → `cache_max_size`). */
export function mountOptionName(key: string): string {
  return (RENAMED.get(key) ?? key).replace(/-/g, '_');
}

export type HelperPlan = { kind: 'fake' } | { kind: 'mount'; args: string[] };

/** mount(8)'s helper arguments (after the program name) → the `fusestream` arguments. */
export function mountHelperPlan(argv: readonly string[]): HelperPlan {
  const positional: string[] = [];
  const options: string[] = [];
  let sloppy = false;
  let fake = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-o' || a === '-t' || a === '-N') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      if (a === '-o') options.push(...v.split(','));
      if (a === '-N') throw new UsageError('-N (mounting in another namespace) is not supported');
    } else if (a.startsWith('-o') && a.length > 2) options.push(...a.slice(2).split(','));
    else if (/^-[sfnvrw]+$/.test(a)) {
      if (a.includes('s')) sloppy = true;
      if (a.includes('f')) fake = true;
      if (a.includes('r')) options.push('ro');
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown helper flag ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError(`usage: mount.fusestream REMOTE MOUNTPOINT [-o OPTIONS]  (got ${positional.length} arguments)`);
  if (fake) return { kind: 'fake' };
  const [remote, mountpoint] = positional as [string, string];
  return { kind: 'mount', args: ['mount', remote, mountpoint, ...optionFlags(options, sloppy), '--daemon'] };
}

function optionFlags(options: readonly string[], sloppy: boolean): string[] {
  const specs = new Map(settingSpecs('mount').map((s) => [mountOptionName(s.key).replace(/_/g, '-'), s]));
  const flags: string[] = [];
  for (const opt of options) {
    if (opt === '' || MOUNT_GENERIC.has(opt) || MOUNT_GENERIC_PREFIXES.some((p) => opt.startsWith(p))) continue;
    const eq = opt.indexOf('=');
    const name = (eq < 0 ? opt : opt.slice(0, eq)).replace(/_/g, '-');
    const value = eq < 0 ? undefined : opt.slice(eq + 1);
    if (name === 'ro' && value === undefined) {
      flags.push('--read-only');
      continue;
    }
    if (name === 'log-file' && value !== undefined && value !== '') {
      flags.push('--log-file', value);
      continue;
    }
    const spec = specs.get(name);
    if (spec === undefined) {
      if (sloppy) continue;
      throw new UsageError(`unknown mount option "${opt}" (fusestream takes its settings with _ for -, e.g. cache_max_size=20G, and ro, log_file=FILE)`);
    }
    if (spec.kind === 'boolean') {
      let on = true;
      if (value !== undefined) {
        try {
          on = parseBoolean(value);
        } catch (err) {
          if (err instanceof SettingError) throw new UsageError(`mount option "${opt}": ${err.message}`, { cause: err });
          throw err;
        }
      }
      if (on) flags.push(`--${spec.key}`);
      continue;
    }
    if (value === undefined || value === '') throw new UsageError(`mount option "${opt}" needs a value (${opt}=…)`);
    flags.push(`--${spec.key}`, value);
  }
  return flags;
}

/** The helper's entry point (bin/mount.fusestream.js): `argv` is process.argv. */
export async function mountHelperMain(argv: readonly string[]): Promise<void> {
  let plan: HelperPlan;
  try {
    plan = mountHelperPlan(argv.slice(2));
  } catch (err) {
    process.stderr.write(`mount.fusestream: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  if (plan.kind === 'fake') return;
  await main([argv[0] ?? process.execPath, argv[1] ?? 'mount.fusestream', ...plan.args]);
}
