// TypeScript declarations of the JavaScript SDK (src/index.js). Each item is documented there.

/** Log levels of `tollgate:policy/host`. */
export declare const Level: Readonly<{ DEBUG: 'debug'; INFO: 'info'; WARN: 'warn' }>;
/** A log level. */
export type LogLevel = 'debug' | 'info' | 'warn';

/** The functions of `tollgate:policy/host`, as componentize-js imports them. */
export interface HostImports {
  log(level: LogLevel, message: string): void;
  globMatch(pattern: string, text: string): boolean;
}
/** Installs the host's functions (the component's entry module calls it). */
export declare function useHost(imports: HostImports): void;
/** Appends a line to the decision log. */
export declare function log(level: LogLevel, message: string): void;
/** Whole-string glob match (the host's inside the sandbox). */
export declare function globMatch(pattern: string, text: string): boolean;

/** Longest pattern accepted, in UTF-8 bytes. */
export declare const MAX_PATTERN_LEN: 1024;
/** Why a pattern is not a valid glob. */
export declare class GlobError extends Error {
  constructor(pattern: string, reason: string);
  readonly pattern: string;
  readonly reason: string;
}
/** The pattern as an anchored regular expression. */
export declare function globToRegExp(pattern: string): RegExp;
/** Throws GlobError unless `pattern` is a valid glob. */
export declare function validateGlob(pattern: string): void;
/** Glob match evaluated in JavaScript (no host call). */
export declare function globMatches(pattern: string, text: string): boolean;

/** Why a config was refused. */
export declare class ConfigError extends Error {
  constructor(message: string);
}
/** A config schema built with `t`. */
export interface Schema<T = unknown> {
  read(value: unknown, path: string): T;
  optional?: boolean;
  fallback?: () => T;
}
/** Schema builders. */
export declare const t: {
  string(): Schema<string>;
  boolean(): Schema<boolean>;
  number(): Schema<number>;
  integer(min?: number, max?: number): Schema<number>;
  u32(): Schema<number>;
  any(): Schema<unknown>;
  list<T>(item: Schema<T>): Schema<T[]>;
  map<T>(item: Schema<T>): Schema<Record<string, T>>;
  optional<T>(inner: Schema<T>): Schema<T | undefined>;
  withDefault<T>(inner: Schema<T>, fallback: () => T): Schema<T>;
  object<F extends Record<string, Schema<any>>>(
    fields: F,
  ): Schema<{ [K in keyof F]: F[K] extends Schema<infer T> ? T : never }>;
};
/** Parses JSON config text against a schema, refusing unknown keys. */
export declare function parseConfig<T>(text: string, schema: Schema<T>): T;

/** A Kubernetes object named in a projected token. */
export declare class ObjectRef {
  constructor(name?: string, uid?: string);
  name: string;
  uid: string;
}
/** The `kubernetes.io` claim. */
export interface KubernetesClaims {
  namespace: string;
  serviceAccount: ObjectRef;
  pod?: ObjectRef;
  node?: ObjectRef;
  secret?: ObjectRef;
}
/** The verified subject token. */
export declare class Token {
  constructor(fields?: object);
  issuer: string;
  subject: string;
  audiences: string[];
  issuedAt?: number;
  notBefore?: number;
  expiresAt: number;
  jwtId?: string;
  kubernetes?: KubernetesClaims;
  claimsJson: string;
  claims(): any;
  claim(pointer: string): any;
  namespace(): string | undefined;
  podName(): string | undefined;
  nodeName(): string | undefined;
}
/** What the workload asked for, and when. */
export declare class Exchange {
  constructor(fields?: object);
  tenant: string;
  identity: string;
  requestedAudiences: string[];
  requestedScopes: string[];
  clientAddress?: string;
  now: number;
}
/** Everything a policy decides on. */
export declare class Request {
  constructor(fields?: object);
  token: Token;
  exchange: Exchange;
  config: string;
  tokenAge(): number | undefined;
}
/** What an allowed workload receives. */
export declare class Grant {
  scopes: string[];
  ttlSeconds?: number;
  claims: [string, string][];
  withScope(scope: string): Grant;
  withScopes(scopes: Iterable<string>): Grant;
  withTtlSeconds(ttl: number): Grant;
  withClaim(name: string, value: unknown): Grant;
  claim(name: string): any;
}
/** A policy's answer. */
export declare class Decision {
  grant?: Grant;
  denial?: { code: string; message: string };
  static allow(grant: Grant): Decision;
  static deny(code: string, message?: string): Decision;
  isAllow(): boolean;
  denialCode(): string | undefined;
}
/** A trust policy. */
export interface Policy<C = any> {
  config: Schema<C>;
  validateConfig?(config: C): void;
  evaluate(config: C, request: Request): Decision;
}
/** `validate-config` as the host runs it: undefined when valid, else the message. */
export declare function validateJson(policy: Policy, config: string): string | undefined;
/** `evaluate` as the host runs it. */
export declare function evaluateJson(policy: Policy, config: string, request: Request): Decision;
/** The world's exports, in the WIT shapes componentize-js expects. */
export declare function exportPolicy(policy: Policy): {
  evaluate(request: unknown): { tag: 'allow' | 'deny'; val: unknown };
  validateConfig(config: string): void;
};
