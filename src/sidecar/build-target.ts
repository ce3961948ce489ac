// Building one target from its config: its sinks, credential issuer and rules, observer, restarter, bootstrap
// credential and TargetRotator, wrapped with the keeper of its ClusterProfile when it has one. run.ts calls it
// at each start (and RunningTargets at each restart); nothing here runs anything.
import type { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { DEFAULT_BOOTSTRAP_TOKEN_SECONDS } from '../core/config/bootstrap.ts';
import { clusterProfileOf } from '../core/config/cluster-profile.ts';
import {
  credentialKindOf,
  type FederatedTarget,
  type SidecarConfig,
  type TargetConfig,
  type TokenTarget,
} from '../core/config/sidecar.ts';
import { accessOf } from '../core/cluster-profile/profile.ts';
import { certificateRules, tokenRules, type CredentialRules } from '../core/credential/rules.ts';
import { serviceAccountUser } from '../core/credential/token.ts';
import type { Clock } from '../io/clock.ts';
import type { EventRecorder } from '../io/kube/events.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import type { Logger } from '../io/log.ts';
import type { BootstrapCredential } from './bootstrap-credential.ts';
import { ClusterProfileKeeper, pokingObserver, ProfiledTarget } from './cluster-profile.ts';
import { connectTarget } from './connect.ts';
import { CsrIssuer } from './csr-issuer.ts';
import { federatedBootstrapCredentials, withFederatedBootstrap } from './federated-bootstrap-credential.ts';
import type { CredentialIssuer } from './issuer.ts';
import { targetObserver, type SidecarMetrics } from './observer.ts';
import { FilePendingStore } from './pending-store.ts';
import { kubeWorkloadPatcher, WorkloadRestarter, type RestartObserver } from './restarter.ts';
import { DirectorySink } from './sinks/directory.ts';
import { SecretSink, secretSinkOptions } from './sinks/secret.ts';
import type { Sink } from './sinks/sink.ts';
import { stepReporter } from './steps.ts';
import { TargetRotator } from './rotator.ts';
import type { ManagedTarget } from './running-targets.ts';
import { TokenIssuer } from './token-issuer.ts';

/** What every target's parts share, for the sidecar's whole life. */
export interface TargetContext {
  /** The source cluster's API (Secret sinks, restarts, federated tokens, ClusterProfiles, events), when there is one. */
  readonly source: KubeClient | undefined;
  readonly stateDir: string;
  readonly clusterProfiles: SidecarConfig['clusterProfiles'];
  /** --once publishes before the consumers start: there is nothing to restart. */
  readonly once: boolean;
  /** The target's bootstrap kubeconfig as last read; undefined when missing. */
  readonly bootstrap: (target: string) => BootstrapCredential | undefined;
  /** The target's signer CA as last loaded, if its config names one. */
  readonly signerCA: (target: string) => X509Certificate | undefined;
  readonly clock: Clock;
  /** Uniform in [0, 1): the jitter of retries, restarts and health checks. */
  readonly random: () => number;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly events: EventRecorder;
}

/** The target's rotator, with the keeper of its ClusterProfile when it has one (docs/cluster-profile.md). */
export function buildTarget(config: TargetConfig, context: TargetContext): ManagedTarget {
  const ref = clusterProfileOf(context.clusterProfiles, config);
  if (ref === undefined) return buildRotator(config, context);
  const { source } = context;
  if (source === undefined) throw new Error(`target ${config.name}: its ClusterProfile needs the source cluster's API`);
  const cluster = () => {
    const bootstrap = context.bootstrap(config.name);
    const server = config.server ?? bootstrap?.server;
    if (server === undefined || bootstrap === undefined) return undefined;
    const { tlsServerName } = bootstrap.config;
    return { server, caPem: bootstrap.caPem, ...(tlsServerName === undefined ? {} : { tlsServerName }) };
  };
  const keeper: ClusterProfileKeeper = new ClusterProfileKeeper({
    source,
    ref,
    targetStatus: () => rotator.status(),
    cluster,
    // The current credential once there is one; before it, the bootstrap credential.
    targetClient: () => {
      const endpoint = cluster();
      const credential = rotator.status().current?.credential ?? context.bootstrap(config.name);
      return endpoint === undefined || credential === undefined ? undefined : connectTarget(endpoint, credential);
    },
    access: accessOf(config),
    intervalMs: context.clusterProfiles.healthCheckSeconds * 1000,
    clock: context.clock,
    random: context.random,
    logger: context.logger.child({ target: config.name }),
    events: context.events,
  });
  const rotator = buildRotator(config, context, () => {
    keeper.poke();
  });
  return new ProfiledTarget(rotator, keeper);
}

/** The target's rotation loop and its parts; `onReadiness` is told of every readiness change. */
export function buildRotator(config: TargetConfig, context: TargetContext, onReadiness?: () => void): TargetRotator {
  const targetLogger = context.logger.child({ target: config.name });
  const onStep = stepReporter(targetLogger, config.name);
  const sinks = sinksOf(config, context, targetLogger, onStep);
  const observed = targetObserver(config.name, context.metrics, context.events, context.logger, {
    restarts: config.restart.length > 0,
    kind: credentialKindOf(config),
    bootstrapWith: config.credential === 'certificate' ? (config.bootstrap?.with ?? 'token') : 'token',
    clock: context.clock,
  });
  const observer = onReadiness === undefined ? observed : pokingObserver(observed, onReadiness);
  const restarter = config.restart.length > 0 && !context.once ? restarterOf(config, context, observer) : undefined;
  const { issuer, rules } = issuerOf(config, context, targetLogger, onStep);
  return new TargetRotator({
    config,
    sinks,
    issuer,
    rules,
    onStep,
    bootstrap: bootstrapOf(config, context),
    clock: context.clock,
    random: context.random,
    observer,
    connect: connectTarget,
    ...(restarter === undefined ? {} : { restarter }),
  });
}

function sinksOf(config: TargetConfig, context: TargetContext, logger: Logger, onStep: (step: string) => void): Sink[] {
  const sinks: Sink[] = [];
  if (config.sinks.directory !== undefined) sinks.push(new DirectorySink({ ...config.sinks.directory, onStep }));
  if (config.sinks.secret !== undefined) {
    if (context.source === undefined)
      throw new Error(`target ${config.name}: a Secret sink needs the source cluster's API`);
    sinks.push(new SecretSink(secretSinkOptions(context.source, config, config.sinks.secret, logger)));
  }
  return sinks;
}

/** How the target's credential is obtained and what it must be, by its kind. */
function issuerOf(
  config: TargetConfig,
  context: TargetContext,
  logger: Logger,
  onStep: (step: string) => void,
): { issuer: CredentialIssuer; rules: CredentialRules } {
  if (config.credential !== 'certificate') return tokenIssuerOf(config, context, onStep);
  const { commonName, organizations } = config.identity;
  const subject = { commonName, organizations };
  return {
    issuer: new CsrIssuer({
      spec: {
        subject,
        keyAlgorithm: config.keyAlgorithm,
        signerName: config.signerName,
        expirationSeconds: config.expirationSeconds,
        approvalTimeoutMs: config.approvalTimeoutSeconds * 1000,
      },
      pending: new FilePendingStore(context.stateDir, config.name),
      clock: context.clock,
      logger,
      labels: {
        'app.kubernetes.io/managed-by': 'kubeconfig-rotator',
        'kubeconfig-rotator.io/target': config.name,
        'kubeconfig-rotator.io/source-host': hostname()
          .slice(0, 63)
          .replace(/[^A-Za-z0-9._-]/g, '-'),
      },
      onStep,
    }),
    rules: certificateRules({
      subject,
      keyAlgorithm: config.keyAlgorithm,
      signerCA: context.signerCA(config.name),
    }),
  };
}

/**
 * Token targets: the target's TokenRequest API, tokens bound to the lease Secret. Federated targets: the
 * source's, tokens of the source ServiceAccount (the pod's own by default) bound to this pod when known.
 */
function tokenIssuerOf(
  config: TokenTarget | FederatedTarget,
  context: TargetContext,
  onStep: (step: string) => void,
): { issuer: CredentialIssuer; rules: CredentialRules } {
  const common = {
    expirationSeconds: config.expirationSeconds,
    audiences: config.audiences,
    revocationCheckSeconds: config.revocationCheckSeconds,
    clock: context.clock,
    onStep,
  };
  if (config.credential === 'token') {
    const { serviceAccount } = config;
    const boundTo = { kind: 'Secret', name: config.leaseSecret ?? `${serviceAccount.name}-lease` } as const;
    return {
      issuer: new TokenIssuer({
        ...common,
        serviceAccount,
        boundTo,
        expectedUser: serviceAccountUser(serviceAccount),
      }),
      rules: tokenRules({ serviceAccount, boundTo, expirationSeconds: config.expirationSeconds }),
    };
  }
  const { serviceAccount, boundTo } = config;
  if (context.source === undefined)
    throw new Error(`target ${config.name}: a federated target needs the source cluster's API`);
  return {
    issuer: new TokenIssuer({
      ...common,
      serviceAccount,
      boundTo,
      requester: context.source,
      expectedUser: config.targetUser,
    }),
    rules: tokenRules({
      serviceAccount,
      boundTo,
      audiences: common.audiences,
      expirationSeconds: config.expirationSeconds,
    }),
  };
}

/**
 * The bootstrap kubeconfig as last read; with federated bootstrap, its server and CA with a source token
 * (the same TokenRequest a federated target makes) in place of a bootstrap token.
 */
function bootstrapOf(config: TargetConfig, context: TargetContext): () => BootstrapCredential | undefined {
  const read = () => context.bootstrap(config.name);
  if (config.credential !== 'certificate' || config.bootstrap?.with !== 'federated') return read;
  const { bootstrap } = config;
  if (context.source === undefined)
    throw new Error(`target ${config.name}: federated bootstrap needs the source cluster's API`);
  const credentials = federatedBootstrapCredentials({
    source: context.source,
    request: {
      serviceAccount: bootstrap.serviceAccount,
      boundTo: bootstrap.boundTo,
      expirationSeconds: bootstrap.expirationSeconds ?? DEFAULT_BOOTSTRAP_TOKEN_SECONDS,
      audiences: bootstrap.audiences,
    },
    clock: context.clock,
  });
  return () => withFederatedBootstrap(read(), credentials);
}

function restarterOf(config: TargetConfig, context: TargetContext, observer: RestartObserver): WorkloadRestarter {
  if (context.source === undefined)
    throw new Error(`target ${config.name}: the restart action needs the source cluster's API`);
  return new WorkloadRestarter({
    workloads: config.restart,
    patch: kubeWorkloadPatcher(context.source),
    clock: context.clock,
    random: context.random,
    observer,
  });
}
