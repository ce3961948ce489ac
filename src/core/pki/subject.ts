// The identity a client certificate carries: Kubernetes reads the user from CN and the groups from O.
export interface Subject {
  readonly commonName: string;
  readonly organizations: readonly string[];
}

export function formatSubject(subject: Subject): string {
  return [`CN=${subject.commonName}`, ...subject.organizations.map((o) => `O=${o}`)].join(', ');
}

export function sameSubject(a: Subject, b: Subject): boolean {
  return (
    a.commonName === b.commonName &&
    a.organizations.length === b.organizations.length &&
    [...a.organizations].sort().every((o, i) => o === [...b.organizations].sort()[i])
  );
}
