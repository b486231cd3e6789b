<?php

declare(strict_types=1);

// PSR-4 autoloader for Plasm\ -> src/, for use without Composer: `require 'php-sdk/autoload.php';`.
// With Composer, `composer dump-autoload` writes vendor/autoload.php from composer.json instead
// (no Packagist access is needed: the SDK depends only on PHP extensions).
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Plasm\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen('Plasm\\'))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
