// Zone files that mirror a server's answers: the DNS benchmark asks fedgate every
// name of its query mix and gives the anchors (Knot, CoreDNS) zones holding exactly
// the records fedgate answered with, so every server answers alike.

/** One resource record as dig prints it: owner with its trailing dot, data in presentation form. */
export interface MirroredRecord {
  name: string;
  type: string;
  ttl: number;
  data: string;
}

/** A question and the answer section it got. */
export interface MirroredAnswer {
  name: string;
  type: string;
  records: MirroredRecord[];
}

export interface ZoneFile {
  /** The apex, as given (no trailing dot). */
  origin: string;
  /** RFC 1035 master format, the SOA first. */
  text: string;
}

interface RRSet {
  ttl: number;
  data: Set<string>;
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`).toLowerCase();

/**
 * The zone files for `origins` holding every record set in `answers`. A record set
 * seen in the answer to its own name wins over the same owner and type seen in
 * another name's answer (a CNAME chain's target); an owner goes to the longest origin
 * that holds it; owners under no origin are left out.
 */
export function zoneFiles(answers: MirroredAnswer[], origins: string[]): ZoneFile[] {
  const direct = new Map<string, RRSet>();
  const chained = new Map<string, RRSet>();
  for (const a of answers) {
    for (const rr of a.records) {
      const into = fqdn(rr.name) === fqdn(a.name) ? direct : chained;
      const key = `${fqdn(rr.name)} ${rr.type}`;
      const set = into.get(key) ?? { ttl: rr.ttl, data: new Set<string>() };
      set.data.add(rr.data);
      into.set(key, set);
    }
  }
  for (const [k, v] of chained) if (!direct.has(k)) direct.set(k, v);

  const apexes = origins.map(fqdn);
  const home = (owner: string) =>
    apexes
      .filter((o) => owner === o || owner.endsWith(`.${o}`))
      .sort((a, b) => b.length - a.length)[0];
  return origins.map((origin) => {
    const apex = fqdn(origin);
    const entries = [...direct]
      .map(([k, v]) => ({ owner: k.split(' ')[0] ?? '', type: k.split(' ')[1] ?? '', set: v }))
      .filter((e) => home(e.owner) === apex);
    // The SOA first, as a zone file wants it.
    entries.sort((a, b) => Number(b.type === 'SOA') - Number(a.type === 'SOA'));
    const lines = [`$ORIGIN ${apex}`, '$TTL 5'];
    for (const e of entries) {
      for (const d of e.set.data) lines.push(`${e.owner} ${e.set.ttl} IN ${e.type} ${d}`);
    }
    return { origin, text: `${lines.join('\n')}\n` };
  });
}
