//! `coachdesk-package`: wraps the release `coachdesk` binary into a .deb (and an .rpm) with
//! Tauri's own bundler, the library tauri-cli uses. tauri-cli itself does not find this
//! repository's layout (the config at the top, the app crate in `src-tauri/`), so this
//! small tool reads the top-level `tauri.conf.json` and hands its bundle settings over.
//!
//! Usage: `coachdesk-package <tauri.conf.json> <release dir> [deb|rpm]...`; the packages
//! land in `<release dir>/bundle/<type>/`. `./scripts/package` builds what it needs first.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;
use tauri_bundler::{
    AppCategory, BundleBinary, BundleSettings, DebianSettings, PackageSettings, PackageType,
    RpmSettings, SettingsBuilder,
};

/// The main binary's name (`[[bin]]` of `src-tauri/Cargo.toml`).
const BINARY: &str = "coachdesk";

/// The parts of `tauri.conf.json` the packages need.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    product_name: String,
    version: String,
    identifier: String,
    #[serde(default)]
    bundle: Bundle,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    category: Option<String>,
    short_description: Option<String>,
    long_description: Option<String>,
    publisher: Option<String>,
    homepage: Option<String>,
    copyright: Option<String>,
    license: Option<String>,
    #[serde(default)]
    icon: Vec<String>,
    #[serde(default)]
    linux: Linux,
}

#[derive(Debug, Default, Deserialize)]
struct Linux {
    #[serde(default)]
    deb: Deb,
    #[serde(default)]
    rpm: Rpm,
}

#[derive(Debug, Default, Deserialize)]
struct Deb {
    depends: Option<Vec<String>>,
    recommends: Option<Vec<String>>,
    section: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Rpm {
    depends: Option<Vec<String>>,
    recommends: Option<Vec<String>>,
}

/// Reads the config; icon paths are made absolute (they are relative to the config file).
fn read_config(path: &Path) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut config: Config = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Tauri config", path.display()))?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    for icon in &mut config.bundle.icon {
        *icon = base.join(&*icon).display().to_string();
    }
    Ok(config)
}

/// The bundler's settings for `config`, packaging `<release_dir>/coachdesk`.
fn settings(
    config: Config,
    release_dir: &Path,
    types: Vec<PackageType>,
) -> anyhow::Result<tauri_bundler::Settings> {
    let bundle = config.bundle;
    let category = match bundle.category.as_deref() {
        Some(name) => Some(
            name.parse::<AppCategory>()
                .map_err(|e| anyhow::anyhow!("unknown bundle category {name:?}: {e:?}"))?,
        ),
        None => None,
    };
    let description = bundle.short_description.clone().unwrap_or_default();
    SettingsBuilder::new()
        .project_out_directory(release_dir)
        .package_types(types)
        .package_settings(PackageSettings {
            product_name: config.product_name,
            version: config.version,
            description,
            homepage: bundle.homepage.clone(),
            authors: bundle.publisher.clone().map(|p| vec![p]),
            default_run: Some(BINARY.to_owned()),
        })
        .bundle_settings(BundleSettings {
            identifier: Some(config.identifier),
            publisher: bundle.publisher,
            homepage: bundle.homepage,
            icon: Some(bundle.icon),
            copyright: bundle.copyright,
            license: bundle.license,
            category,
            short_description: bundle.short_description,
            long_description: bundle.long_description,
            deb: DebianSettings {
                depends: bundle.linux.deb.depends,
                recommends: bundle.linux.deb.recommends,
                section: bundle.linux.deb.section,
                ..DebianSettings::default()
            },
            rpm: RpmSettings {
                depends: bundle.linux.rpm.depends,
                recommends: bundle.linux.rpm.recommends,
                release: "1".to_owned(),
                ..RpmSettings::default()
            },
            ..BundleSettings::default()
        })
        .binaries(vec![BundleBinary::new(BINARY.to_owned(), true)])
        .build()
        .context("invalid bundle settings")
}

fn package_types(args: &[String]) -> anyhow::Result<Vec<PackageType>> {
    if args.is_empty() {
        return Ok(vec![PackageType::Deb, PackageType::Rpm]);
    }
    args.iter()
        .map(|name| match name.as_str() {
            "deb" => Ok(PackageType::Deb),
            "rpm" => Ok(PackageType::Rpm),
            // AppImage's tools (linuxdeploy) are downloaded from the internet at bundle time.
            other => bail!("unsupported package type {other:?}: deb or rpm"),
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, release_dir, types @ ..] = args.as_slice() else {
        bail!("usage: coachdesk-package <tauri.conf.json> <release dir> [deb|rpm]...");
    };
    let release_dir = PathBuf::from(release_dir);
    let binary = release_dir.join(BINARY);
    if !binary.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p coachdesk-app --bin coachdesk`",
            binary.display()
        );
    }
    let settings = settings(
        read_config(Path::new(config))?,
        &release_dir,
        package_types(types)?,
    )?;
    let bundles = tauri_bundler::bundle_project(&settings).context("bundling failed")?;
    for bundle in bundles {
        for path in bundle.bundle_paths {
            println!("{}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_config_names_the_product_its_icon_and_the_runtime_libraries() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tauri.conf.json");
        let config = read_config(&path).unwrap();
        assert_eq!(config.product_name, "Coachdesk");
        assert!(
            Path::new(&config.bundle.icon[0]).is_file(),
            "{:?}",
            config.bundle.icon
        );
        let depends = config.bundle.linux.deb.depends.clone().unwrap_or_default();
        for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libdbus-1-3"] {
            assert!(depends.iter().any(|d| d == lib), "{lib} in {depends:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(config, dir.path(), vec![PackageType::Deb]).unwrap();
        assert_eq!(settings.main_binary_name().unwrap(), BINARY);
        assert_eq!(
            settings.binary_path(settings.main_binary().unwrap()),
            dir.path().join(BINARY)
        );
    }

    #[test]
    fn appimage_is_refused_with_a_reason() {
        let err = package_types(&["appimage".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("deb or rpm"), "{err}");
    }
}
