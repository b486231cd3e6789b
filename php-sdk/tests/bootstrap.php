<?php

declare(strict_types=1);

// PSR-4 for Plasm\ (src/) and Plasm\Tests\ (tests/). Composer's generated autoloader is used
// instead when `composer dump-autoload` has been run; no Packagist download is ever needed.
$composer = __DIR__ . '/../vendor/autoload.php';
if (is_file($composer)) {
    require $composer;
    return;
}

spl_autoload_register(static function (string $class): void {
    $roots = ['Plasm\\Tests\\' => __DIR__ . '/', 'Plasm\\' => __DIR__ . '/../src/'];
    foreach ($roots as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
