import { describe, expect, it } from "vitest";
import { RefusedError } from "../../../src/pipeline/errors";
import { StoreConfigError } from "../../../src/store/errors";
import { FileStore } from "../../../src/store/fileStore";
import { S3Store } from "../../../src/store/s3Store";
import { parseStoreUrl, redactUrl, storeFromUrl } from "../../../src/store/url";

const NO_ENV = {};

describe("parseStoreUrl", () => {
  it("reads Pulumi's s3:// backend parameters", () => {
    expect(
      parseStoreUrl(
        "s3://releases/team/a?endpoint=http://127.0.0.1:9000&s3ForcePathStyle=true&region=us-east-1",
        NO_ENV,
      ),
    ).toEqual({
      kind: "s3",
      bucket: "releases",
      prefix: "team/a",
      endpoint: "http://127.0.0.1:9000",
      region: "us-east-1",
      forcePathStyle: true,
      redactedUrl:
        "s3://releases/team/a?endpoint=http://127.0.0.1:9000&s3ForcePathStyle=true&region=us-east-1",
    });
  });

  it("AWS S3: no endpoint, virtual-hosted style, region from the URL, else the environment", () => {
    const aws = parseStoreUrl("s3://my.bucket?region=eu-west-1&profile=ci", NO_ENV);
    expect(aws).toMatchObject({ bucket: "my.bucket", prefix: "", region: "eu-west-1" });
    expect(aws).toMatchObject({ forcePathStyle: false, profile: "ci" });
    expect(aws).not.toHaveProperty("endpoint");
    expect(parseStoreUrl("s3://bucket/p/", { AWS_REGION: "ap-south-1" })).toMatchObject({
      region: "ap-south-1",
      prefix: "p",
    });
    expect(parseStoreUrl("s3://bucket", NO_ENV)).not.toHaveProperty("region");
    // An S3-compatible server signs with any region; us-east-1 is what they expect by default.
    expect(parseStoreUrl("s3://bucket?endpoint=https://minio.internal", NO_ENV)).toMatchObject({
      region: "us-east-1",
      endpoint: "https://minio.internal",
    });
    expect(parseStoreUrl("s3://bucket?use_path_style=true", NO_ENV)).toMatchObject({
      forcePathStyle: true,
    });
  });

  it("file:///abs/dir", () => {
    expect(parseStoreUrl("file:///var/lib/slipway", NO_ENV)).toEqual({
      kind: "file",
      dir: "/var/lib/slipway",
    });
  });

  it.each([
    [
      "gs://bucket/x",
      /scheme gs:\/\/ is not a release store; allowed: file:\/\/\/absolute\/dir, or s3:\/\/bucket/,
    ],
    ["bucket/x", /store URL bucket\/x: no scheme/],
    ["s3:///prefix", /no bucket/],
    ["s3://My_Bucket", /bucket "My_Bucket" is not a bucket name/],
    ["s3://ab", /bucket "ab" is not a bucket name/],
    ["s3://bucket:9000", /a bucket has no port/],
    ["s3://bucket/a/../b", /"\." or "\.\." segments/],
    [
      "s3://bucket?endpoint=127.0.0.1:9000",
      /endpoint "127\.0\.0\.1:9000" has no http:\/\/ or https:\/\/ scheme; without one the AWS SDK speaks TLS .*endpoint=http:\/\/127\.0\.0\.1:9000/,
    ],
    ["s3://bucket?endpoint=ftp://host", /has no http:\/\/ or https:\/\/ scheme/],
    ["s3://bucket?region=EU%20West", /region "EU West" is not a region name/],
    ["s3://bucket?region=us_east_1", /region "us_east_1" is not a region name/],
    ["s3://bucket?s3ForcePathStyle=yes", /s3ForcePathStyle="yes"; allowed: true or false/],
    ["s3://bucket?acl=public", /unknown parameter acl; parameters: region, endpoint/],
    ["file://relative/dir", /not a file URL with an absolute path/],
  ])("refuses %s", (url, message) => {
    expect(() => parseStoreUrl(url, NO_ENV)).toThrow(StoreConfigError);
    expect(() => parseStoreUrl(url, NO_ENV)).toThrow(message);
  });

  it("refuses credentials in the URL without printing them", () => {
    for (const url of [
      "s3://AKIAEXAMPLE:wJalrSECRET@bucket/p",
      "s3://bucket?endpoint=http://AKIAEXAMPLE:wJalrSECRET@127.0.0.1:9000",
      "s3://bucket?secret_access_key=wJalrSECRET&access_key_id=AKIAEXAMPLE",
      "https://AKIAEXAMPLE:wJalrSECRET@example.com/",
    ]) {
      let err: Error | undefined;
      try {
        parseStoreUrl(url, NO_ENV);
      } catch (e) {
        err = e as Error;
      }
      expect(err).toBeInstanceOf(StoreConfigError);
      expect(err!.message).not.toContain("wJalrSECRET");
      expect(err!.message).not.toContain("AKIAEXAMPLE");
      expect(err!.message).toContain("***");
    }
  });
});

describe("redactUrl", () => {
  it.each([
    ["s3://key:secret@bucket/p?region=x", "s3://***@bucket/p?region=x"],
    [
      "s3://bucket?region=x&aws_secret=s3cr3t&token=t0k",
      "s3://bucket?region=x&aws_secret=***&token=***",
    ],
    ["https://api.pulumi.com", "https://api.pulumi.com"],
    ["s3://bucket?endpoint=http://127.0.0.1:9000", "s3://bucket?endpoint=http://127.0.0.1:9000"],
  ])("%s", (url, shown) => expect(redactUrl(url)).toBe(shown));
});

describe("storeFromUrl", () => {
  const base = { projectDir: "/project" };

  it("an explicit URL or SLIPWAY_STORE wins over the backend", () => {
    const s3 = storeFromUrl("s3://bucket/x?region=us-east-1", {
      ...base,
      backendUrl: "https://api.pulumi.com",
      env: {},
    });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.describe()).toBe("s3://bucket/x?region=us-east-1");
    const fromEnv = storeFromUrl(undefined, {
      ...base,
      backendUrl: "file:///state",
      env: { SLIPWAY_STORE: "file:///elsewhere" },
    });
    expect(fromEnv).toBeInstanceOf(FileStore);
    expect((fromEnv as FileStore).dir).toBe("/elsewhere");
  });

  it("an s3:// backend puts the store in its bucket, under its prefix's .slipway/", () => {
    const store = storeFromUrl(undefined, {
      ...base,
      backendUrl:
        "s3://state/pulumi?region=eu-west-1&endpoint=http://127.0.0.1:9000&s3ForcePathStyle=true",
      env: {},
    }) as S3Store;
    expect(store).toBeInstanceOf(S3Store);
    expect(store.stageKey("prod", "lease.json")).toBe("pulumi/.slipway/prod/lease.json");
    expect(store.log("prod").keyOf(7)).toBe("pulumi/.slipway/prod/log/000000000007.json");
    expect(store.location).toMatchObject({
      bucket: "state",
      region: "eu-west-1",
      forcePathStyle: true,
    });
  });

  it("a file backend keeps today's files next to its state; the log directory may be given", () => {
    expect(
      (storeFromUrl(undefined, { ...base, backendUrl: "file:///state", env: {} }) as FileStore).dir,
    ).toBe("/state/.slipway-releases");
    expect(
      (
        storeFromUrl(undefined, {
          ...base,
          backendUrl: "file:///state",
          logDir: "/logs",
          env: {},
        }) as FileStore
      ).dir,
    ).toBe("/logs");
  });

  it.each(["s3://state", "gs://state", "azblob://state", "https://api.pulumi.com"])(
    "a shared backend %s with a machine-local store is refused with the fix",
    (backendUrl) => {
      for (const url of [undefined, "file:///tmp/releases"]) {
        const attempt = () => storeFromUrl(url, { ...base, backendUrl, env: {} });
        if (backendUrl === "s3://state" && url === undefined) {
          expect(attempt()).toBeInstanceOf(S3Store); // derived, so shared
          continue;
        }
        expect(attempt).toThrow(RefusedError);
        expect(attempt).toThrow(
          /is shared by every runner, but the release store .* is on this machine only.*Set SLIPWAY_STORE=s3:\/\//,
        );
      }
    },
  );

  it("a bad s3:// backend says the store was derived from it and how to name one", () => {
    expect(() =>
      storeFromUrl(undefined, {
        ...base,
        backendUrl: "s3://state?endpoint=127.0.0.1:9000",
        env: {},
      }),
    ).toThrow(/TLS.*derived from PULUMI_BACKEND_URL; set SLIPWAY_STORE=s3:\/\//);
  });
});
