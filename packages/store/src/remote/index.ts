export { isRemoteUrl, isLoopbackHost, remoteTarget, DEFAULT_RETRY_SECONDS, type RemoteTarget, type TargetOptions } from './target.ts';
export { postJson, newIdempotencyKey, type PostOptions, type RemoteAnswer } from './client.ts';
export { callRemote, commandPath, type RemoteResult } from './call.ts';
