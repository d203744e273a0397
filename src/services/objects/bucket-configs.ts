/**
 * Stored bucket documents parsed once per distinct text: CORS and lifecycle configurations are
 * kept as the XML GetBucketCors / GetBucketLifecycleConfiguration return, and read on hot paths
 * (every request with an Origin, every GET/HEAD/PUT for x-amz-expiration, the lifecycle loop).
 */
import { type CorsConfiguration, parseCorsConfiguration } from './cors.js';
import { type LifecycleConfiguration, parseLifecycleConfiguration } from './lifecycle-rules.js';

function cached<T>(parse: (text: string) => T) {
  const cache = new Map<string, T | undefined>();
  return (text: string | null | undefined): T | undefined => {
    if (!text) return undefined;
    if (cache.has(text)) return cache.get(text);
    let v: T | undefined;
    try {
      v = parse(text);
    } catch {
      v = undefined;
    }
    if (cache.size > 500) cache.clear();
    cache.set(text, v);
    return v;
  };
}

export const storedCors: (text: string | null | undefined) => CorsConfiguration | undefined =
  cached(parseCorsConfiguration);
export const storedLifecycle: (text: string | null | undefined) => LifecycleConfiguration | undefined =
  cached((t) => parseLifecycleConfiguration(t, { newId: () => 'rule' }));
