import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import {
  freePort,
  requireCommand,
  startProcess,
  waitFor,
  type Started,
} from "../providers/servers";

/**
 * A real S3 server for the tests: moto_server (PyPI moto[server] 5.2, installed by
 * scripts/install-test-servers.sh) on a free loopback port, with one bucket. moto honours
 * `If-None-Match: *` and `If-Match` on PutObject, all the release store relies on.
 * docs/release-store.md says why moto and not MinIO.
 */
export const S3_CREDENTIALS = {
  accessKeyId: "slipway-test-key",
  secretAccessKey: "slipway-test-secret",
};

export interface S3Server {
  endpoint: string;
  bucket: string;
  process: Started;
  /** A client with the test's credentials, for reading and forging objects behind the store's back. */
  admin: S3Client;
  /** `s3://<bucket>/<prefix>?endpoint=…&s3ForcePathStyle=true&region=us-east-1`: a store or backend URL. */
  url(prefix: string): string;
  /** The environment a process needs to reach it (credentials only; the URL carries the rest). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3(bucket: string): Promise<S3Server> {
  const command = requireCommand("moto_server", "PyPI moto[server]");
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const started = startProcess(command, ["-H", "127.0.0.1", "-p", String(port)]);
  await waitFor(
    "moto_server",
    async () => (await fetch(`${endpoint}/moto-api/`)).ok,
    60_000,
    started,
  );
  const admin = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    maxAttempts: 1,
  });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    process: started,
    admin,
    url: (prefix) =>
      `s3://${bucket}/${prefix}?endpoint=${endpoint}&s3ForcePathStyle=true&region=us-east-1`,
    env: {
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    },
    async stop() {
      admin.destroy();
      await started.stop();
    },
  };
}
